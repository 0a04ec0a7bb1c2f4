"""`pip install .` carries the console: a wheel built from the tree serves GET / and its files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from support.serve import Serve

REPO = Path(__file__).resolve().parents[2]
CONSOLE = REPO / "leadrelay" / "web" / "console"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_console_files_are_in_the_wheel_and_served_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        timeout=200,
        capture_output=True,
    )
    (wheel,) = wheels.glob("leadrelay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.name for p in CONSOLE.iterdir() if p.suffix in (".html", ".js", ".css"))
    assert len(shipped) >= 9, shipped
    missing = [name for name in shipped if f"leadrelay/web/console/{name}" not in names]
    assert missing == [], f"the wheel lacks {missing}"
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    # the installed copy comes first on the path (and the tree is not the working directory,
    # which `python -m` would put first), so `leadrelay serve` runs from it
    monkeypatch.chdir(tmp_path)
    with Serve(tmp_path / "lr.db", relay="off", env={"PYTHONPATH": str(target)}) as serve:
        where = subprocess.run(
            [sys.executable, "-c", "import leadrelay; print(leadrelay.__file__)"],
            env={"PYTHONPATH": str(target)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert where.startswith(str(target)), where
        page = httpx.get(f"{serve.url}/")
        assert page.status_code == 200 and "/console/app.js" in page.text
        for name in shipped:
            if name == "index.html":
                continue
            answer = httpx.get(f"{serve.url}/console/{name}")
            assert answer.status_code == 200, name
            assert answer.content == (CONSOLE / name).read_bytes(), name
