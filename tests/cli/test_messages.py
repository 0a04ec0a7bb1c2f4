"""Messages that say what is wrong without making anyone guess (issue 24, item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadrelay.auth import ADMIN, Principal
from leadrelay.cli.main import app
from leadrelay.config import load_settings
from leadrelay.errors import ConfigError
from leadrelay.leads import lead_not_found
from support.database import execute
from support.serve import cli

runner = CliRunner()


def invoke(*args: str, code: int, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "leadrelay.db")
    invoke("init", "--db", path, code=0)
    return path


def test_missing_lead_is_named_without_for_you(db: str) -> None:
    said = invoke("leads", "show", "999", "--db", db, code=1).stderr.strip()
    assert said == "error: there is no lead 999"
    # a provider is not told whether another provider's lead exists
    provider = Principal("provider", provider_id=3)
    assert str(lead_not_found(999, provider)) == "there is no lead 999 among your leads"
    assert str(lead_not_found(999, ADMIN)) == "there is no lead 999"


def test_outbox_retry_tells_missing_from_not_dead(db: str) -> None:
    missing = invoke("outbox", "retry", "999", "--db", db, code=1).stderr
    assert missing.startswith("error: there is no event 999")
    invoke("leads", "create", "--name", "Ada", "--db", db, code=0)  # event 1, pending
    pending = invoke("outbox", "retry", "1", "--db", db, code=1).stderr
    assert pending.strip() == "error: event 1 is pending, not dead-lettered: nothing to retry"
    execute(db, "UPDATE events SET state = 'dead', last_error = 'HTTP 413'")
    invoke("outbox", "retry", "1", "--db", db, code=0)


def test_serve_on_an_address_this_machine_lacks(db: str) -> None:
    result = cli(db, "serve", "--host", "10.255.255.1", "--port", "8000", check=False)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: cannot listen on 10.255.255.1: no network interface")
    assert "--port" not in line and "Traceback" not in line


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"LEADRELAY_PORT": "eighty"},
         "setting 'port' (from LEADRELAY_PORT) must be a whole number, e.g. 8000; got 'eighty'"),
        ({"LEADRELAY_EVENTS_RETENTION_DAYS": "a month"},
         "setting 'events_retention_days' (from LEADRELAY_EVENTS_RETENTION_DAYS) must be a "
         "number, e.g. 0.5 or 30; got 'a month'"),
        ({"LEADRELAY_ENCRYPTED_CHANNELS": "ture"},
         "setting 'encrypted_channels' (from LEADRELAY_ENCRYPTED_CHANNELS) must be true or "
         "false; got 'ture'"),
    ],
)  # fmt: skip
def test_a_bad_value_names_setting_source_and_what_is_expected(
    env: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert str(caught.value) == said
    assert "invalid literal" not in said


def test_a_bad_number_in_the_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "leadrelay.toml"
    config.write_text('[leadrelay]\nport = "80a"\n')
    result = invoke("serve", "--config", str(config), code=2)
    assert result.stderr.strip() == (
        f"error: setting 'port' (from {config}) must be a whole number, e.g. 8000; got '80a'"
    )


def test_unknown_key_and_section_get_did_you_mean(tmp_path: Path) -> None:
    config = tmp_path / "leadrelay.toml"
    config.write_text("[leadrelay]\nprot = 9000\n")
    with pytest.raises(ConfigError, match=r"unknown settings: prot \(did you mean port\?\)"):
        load_settings(config_file=config, env={})
    config.write_text("[leadrelya]\nport = 9000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, env={})
    assert "unknown section [leadrelya] (did you mean leadrelay?)" in str(caught.value)
    assert "unknown settings" not in str(caught.value)


def test_unknown_leadrelay_env_var_is_a_warning(db: str) -> None:
    result = invoke("leads", "list", "--db", db, code=0, env={"LEADRELAY_PROT": "9000"})
    assert result.stderr.strip() == (
        "warning: LEADRELAY_PROT is not a leadrelay setting and is ignored "
        "(did you mean LEADRELAY_PORT?)"
    )
