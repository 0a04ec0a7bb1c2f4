"""The operators' alerting rules and dashboard: promtool's unit tests pass, and every metric
they use is one leadrelay exports (a renamed metric would leave an alert that never fires)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from leadrelay import metrics

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "leadrelay-rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "leadrelay-rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "leadrelay-dashboard.json"
NAME = re.compile(r"\bleadrelay_[a-z_]+")


def exported() -> set[str]:
    """Every series name /metrics can carry, labelled ones included before their first use."""
    text = metrics.render({"pending": 0, "dead": 0, "oldest_pending": None}, 0.0, lease_held=True)
    names = {line.split("{")[0].split()[0] for line in text.splitlines() if NAME.match(line)}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            names |= {value._name + s for s in suffixes.get(value._type, [""])}
    return names


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(NAME.findall(RULES.read_text())) | set(NAME.findall("\n".join(exprs)))
    assert used, "no metric found in the rules or the dashboard"
    missing = used - exported()
    assert not missing, f"not exported by leadrelay: {sorted(missing)}"
    # the dashboard shows what each alert watches
    watched = set(NAME.findall(RULES.read_text()))
    for alert_metric in watched:
        assert any(alert_metric in expr for expr in exprs), f"no panel shows {alert_metric}"


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool missing: scripts/test installs Debian's prometheus package as root",
)
def test_alerting_rules_pass_promtool() -> None:
    for args in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        result = subprocess.run(
            ["promtool", *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
