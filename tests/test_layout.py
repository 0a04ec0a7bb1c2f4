"""The package's wings import downward only, so the file list keeps drawing the architecture.

    cli/      the operator's commands                     (top: nothing imports it)
    web/      the daemon's HTTP side: intake, API, app
    doctor    the health checks behind `leadrelay doctor`
    relay/    outbox → Pusher
    outbox    the outbox as an operator sees it (CLI and admin API)
    pusher/   Pusher settings, REST client, protocol client
    auth, leads, accounts, erasure, crm_status, stats: the use cases
    store/    every SQL statement: base, reads, rows, batching, retention shared;
              sqlite/ and postgres/ the backends, which never import each other
    errors, events, config, logs, metrics, search, speed: the base every wing uses

A module may import its own floor and the floors below; an import that reaches up fails
this test with the importing module, the line and the imported module named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "leadrelay"

FLOORS: list[tuple[str, ...]] = [
    (
        "leadrelay",
        "leadrelay.errors",
        "leadrelay.events",
        "leadrelay.config",
        "leadrelay.logs",
        "leadrelay.metrics",
        "leadrelay.children",
        "leadrelay.search",
        "leadrelay.speed",
    ),
    ("leadrelay.store",),
    (
        "leadrelay.auth",
        "leadrelay.leads",
        "leadrelay.accounts",
        "leadrelay.erasure",
        "leadrelay.crm_status",
        "leadrelay.stats",
    ),
    ("leadrelay.pusher",),
    ("leadrelay.outbox",),
    ("leadrelay.relay",),
    ("leadrelay.doctor",),
    ("leadrelay.lead_writer",),
    ("leadrelay.web",),
    ("leadrelay.cli", "leadrelay.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (
        PACKAGE.parent / relative / "__init__.py"
    ).is_file()


def floor_of(name: str) -> int | None:
    """The floor of the longest prefix of `name` that has one."""
    best: tuple[int, int] | None = None
    for level, owners in enumerate(FLOORS):
        for owner in owners:
            if name == owner or name.startswith(owner + "."):
                if best is None or len(owner) > best[1]:
                    best = (level, len(owner))
    return None if best is None else best[0]


def imported_modules(source: str, name: str, *, package: bool) -> list[tuple[int, str]]:
    """Every leadrelay module that `source` imports (lazy and TYPE_CHECKING imports too)."""
    here = name if package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("leadrelay")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base != "leadrelay" and not base.startswith("leadrelay."):
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.append((node.lineno, target if is_module(target) else base))
    return found


def upward_imports(source: str, name: str, *, package: bool = False) -> list[str]:
    own = floor_of(name)
    assert own is not None, f"{name} has no floor"
    return [
        f"{name}:{line} imports {target} (floor {floor_of(target)}, above floor {own})"
        for line, target in imported_modules(source, name, package=package)
        if (floor_of(target) or 0) > own
    ]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_layout_every_module_has_a_floor() -> None:
    missing = [module_name(p) for p in MODULES if floor_of(module_name(p)) is None]
    assert not missing, f"give these modules a floor in tests/test_layout.py: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_layout_imports_point_downward(path: Path) -> None:
    upward = upward_imports(path.read_text(), module_name(path), package=path.name == "__init__.py")
    assert not upward, "an import reaches up a floor:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    ("source", "reaches"),
    [
        ("from leadrelay.web.state import state\n", "leadrelay.web.state"),
        ("def f():\n    from leadrelay.cli import main\n", "leadrelay.cli.main"),
        ("from ..relay import relay\n", "leadrelay.relay.relay"),
        ("import leadrelay.cli.support\n", "leadrelay.cli.support"),
    ],
)
def test_layout_check_catches_an_upward_import(source: str, reaches: str) -> None:
    found = upward_imports(source, "leadrelay.store.sqlite")
    assert len(found) == 1 and f"imports {reaches} " in found[0]


def test_layout_check_allows_a_downward_import() -> None:
    assert upward_imports("from leadrelay.store.sqlite import Store\n", "leadrelay.web.api") == []


BACKENDS = ("leadrelay.store.sqlite", "leadrelay.store.postgres")
# the store's modules that reach both backends: open_store, the retention policy's dispatch
# to each backend's walk, and db copy (from the one into the other)
BOTH = (
    "leadrelay.store",
    "leadrelay.store.retention",
    "leadrelay.store.copy",
    "leadrelay.store.search_index",
)


def backend_of(name: str) -> str | None:
    return next((b for b in BACKENDS if name == b or name.startswith(b + ".")), None)


def crossing_imports(source: str, name: str, *, package: bool = False) -> list[str]:
    """A backend importing the other, or a shared store module importing a backend."""
    own = backend_of(name)
    if name in BOTH or not name.startswith("leadrelay.store"):
        return []
    return [
        f"{name}:{line} imports {target}"
        for line, target in imported_modules(source, name, package=package)
        if backend_of(target) not in (None, own)
    ]


@pytest.mark.parametrize(
    "path", [p for p in MODULES if module_name(p).startswith("leadrelay.store")], ids=module_name
)
def test_layout_backends_keep_to_themselves(path: Path) -> None:
    crossing = crossing_imports(
        path.read_text(), module_name(path), package=path.name == "__init__.py"
    )
    assert not crossing, "a backend reaches into another, or shared code into one:\n" + "\n".join(
        crossing
    )


def test_layout_backend_check_catches_a_crossing() -> None:
    found = crossing_imports(
        "from leadrelay.store.sqlite.connection import connect\n", "leadrelay.store.postgres.store"
    )
    assert len(found) == 1 and "leadrelay.store.sqlite.connection" in found[0]
    shared = crossing_imports(
        "from leadrelay.store.postgres import Store\n", "leadrelay.store.reads"
    )
    assert len(shared) == 1
    assert crossing_imports("from ..base import Row\n", "leadrelay.store.sqlite.store") == []
