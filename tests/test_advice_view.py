"""The Risk page's "Second opinion": the pure table, and the page showing a running hedge's opinion."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.ui.views.advice import ADVICE_COLUMNS, advice_table

ROOT = Path(__file__).resolve().parents[1]


def test_advice_table_rows_sorted_by_score() -> None:
    s = [{"hedge_id": "a", "advice": {"analyzer": "rules", "score": 15, "level": "ok", "action": "none",
                                      "findings": ["liquidation 25.0% away"]}},
         {"hedge_id": "b", "advice": None},
         {"hedge_id": "c", "advice": {"analyzer": "llm:m", "score": 70, "level": "act", "action": "flatten",
                                      "findings": ["one", "two"]}}]
    t = advice_table(s)
    assert list(t.columns) == ADVICE_COLUMNS and list(t["hedge_id"]) == ["c", "a"]
    assert t.iloc[0]["findings"] == "one | two" and t.iloc[0]["score"] == 70
    assert advice_table([{"hedge_id": "x"}]).empty


@pytest.mark.timeout(300)
def test_risk_page_shows_the_second_opinion(tmp_path, monkeypatch) -> None:
    from hedge_core.runner.client import RunnerClient
    from tests.support.browser import kill_runner, panel_env, start_runner, wait_for

    env = panel_env(tmp_path, demo_days=10)
    proc = start_runner({**env, "HEDGE_ADVISOR_INTERVAL_S": "1"}, tmp_path / "runner.log")
    try:
        c = RunnerClient.discover(env["HEDGE_RUNNER_HOME"])
        c.start("carry-e2e", mode="paper", start="2024-01-01T05:00Z", speed=3600.0, hedge_id="adv-1")
        advice = wait_for(lambda: c.hedge("adv-1").get("advice"), 60, what="an opinion")
        env["HEDGE_PANEL_AUTOSTART"] = "1"
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
        at.switch_page("pages/risk.py").run()
        assert not at.exception, at.exception
        assert any(h.value == "Second opinion" for h in at.subheader)
        tables = [d.value for d in at.dataframe if "analyzer" in d.value.columns]
        assert tables and tables[0].iloc[0]["hedge_id"] == "adv-1"
        assert tables[0].iloc[0]["analyzer"] == advice["analyzer"] == "rules"
    finally:
        kill_runner(env["HEDGE_RUNNER_HOME"], proc)
