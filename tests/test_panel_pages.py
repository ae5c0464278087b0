"""Every panel page renders without exceptions (AppTest) on an empty database, on the demo market and
with a running paper hedge; the start form rejects bad input naming the field; import/secrets rules.

Each scenario has its own database, runner home and parameter folder; the runner of the running
scenario is killed at teardown. Pages are discovered from pages/[!_]*.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.runner.client import RunnerClient
from hedge_core.store import Store
from tests.support.browser import kill_runner, panel_env, start_runner, wait_for

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("[!_]*.py"))
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory) -> dict[str, str]:
    return panel_env(tmp_path_factory.mktemp("demo"), demo_days=20)


@pytest.fixture(scope="module")
def running_env(tmp_path_factory):
    """A runner (its own home) with one paper hedge in MONITORING_POSITIONS on the demo market."""
    root = tmp_path_factory.mktemp("running")
    env = panel_env(root, demo_days=10)
    proc = start_runner(env, root / "runner.log")
    try:
        c = RunnerClient.discover(env["HEDGE_RUNNER_HOME"])
        out = c.start("carry-e2e", mode="paper", start="2024-01-01T05:00Z", speed=3600.0, hedge_id="pg-1")
        wait_for(lambda: c.hedge(out["hedge_id"]).get("state") == "MONITORING_POSITIONS", 60, what="hedged")
        env["HEDGE_PANEL_AUTOSTART"] = "1"  # the panel attaches to the running runner
        yield env
    finally:
        kill_runner(env["HEDGE_RUNNER_HOME"], proc)


def _run(page: str, env: dict[str, str], monkeypatch) -> AppTest:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page(page).run()
    return at


def test_every_page_is_in_the_navigation() -> None:
    from pages._nav import PAGES as NAV  # app.py mounts this one list (pages/_auth.py mounts it for bookmarks)

    assert PAGES and sorted(path for path, _title, _icon in NAV) == PAGES
    assert "navigation(" in (ROOT / "app.py").read_text()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_database(page: str, tmp_path, monkeypatch) -> None:
    env = panel_env(tmp_path, demo_days=None, export=False)
    at = _run(page, env, monkeypatch)
    assert not at.exception, at.exception


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_demo_market(page: str, demo_env, monkeypatch) -> None:
    at = _run(page, demo_env, monkeypatch)
    assert not at.exception, at.exception


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_running_paper_hedge(page: str, running_env, monkeypatch) -> None:
    at = _run(page, running_env, monkeypatch)
    assert not at.exception, at.exception
    if page == "pages/overview.py":
        row = at.dataframe[0].value.iloc[0]
        assert (row["hedge_id"], row["mode"], row["state"]) == ("pg-1", "paper", "MONITORING_POSITIONS")
        assert list(at.dataframe[0].value.columns[:3]) == ["hedge_id", "pnl", "state"]  # PnL first
        eq = [c for c in at.get("plotly_chart") if "net PnL per hedge" in c.proto.spec]
        assert len(eq) == 1 and '"pg-1"' in eq[0].proto.spec  # the equity curve of the running hedge
    if page == "pages/hedge_detail.py":
        charts = at.get("plotly_chart")
        assert len(charts) == 1
        import json

        spec = json.loads(charts[0].proto.spec)
        assert len(spec["data"][0]["x"]) >= 12  # the hedge's window of market data, not an empty chart
        assert any("PAPER" in i.value for i in at.info)
        prog = at.get("progress")  # the replay: its clock and a progress bar over the window
        assert len(prog) == 1 and prog[0].proto.text.startswith("replay 2024-01-") and 0 < prog[0].proto.value < 100


def test_overview_without_runner_says_what_to_do(demo_env, monkeypatch) -> None:
    at = _run("pages/overview.py", demo_env, monkeypatch)
    assert any("hedge runner start" in w.value for w in at.warning)


@pytest.mark.parametrize("size, symbol, mode, field", [
    (-5.0, "BTC/USDT", "paper", "size"),
    (0.0, "BTC/USDT", "paper", "size"),
    (1000.0, "BTCUSDT", "paper", "spot symbol"),
    (1000.0, "BTC/USDT", "live", "mode"),  # not promoted to live: the gate names the mode
])
def test_start_form_rejects_bad_input_naming_the_field(demo_env, monkeypatch, size, symbol, mode, field) -> None:
    """Rejected before the runner is asked (this scenario has none)."""
    at = _run("pages/start_hedge.py", demo_env, monkeypatch)
    at.number_input(key="start_size").set_value(size)
    at.text_input(key="start_symbol").input(symbol)
    at.radio(key="start_mode").set_value(mode)
    at.button(key="FormSubmitter:start-Start hedge").click()
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any(f"Not started — {field}:" in e for e in errors), errors


def test_data_page_import_rejects_missing_path(demo_env, monkeypatch, tmp_path) -> None:
    at = _run("pages/data.py", demo_env, monkeypatch)
    at.text_input[0].input(str(tmp_path / "nope"))
    at.button(key="FormSubmitter:import-Import").click()
    at.run()
    assert any("does not exist" in e.value for e in at.error)


def test_import_refused_while_hedges_run(running_env, monkeypatch) -> None:
    at = _run("pages/data.py", running_env, monkeypatch)
    at.text_input[0].input(str(ROOT / "pyproject.toml"))
    at.button(key="FormSubmitter:import-Import").click()
    at.run()
    assert any("refused" in e.value and "hedge(s) are active" in e.value for e in at.error), [e.value for e in at.error]
    c = RunnerClient.discover(running_env["HEDGE_RUNNER_HOME"])
    assert c.hedge("pg-1")["state"] == "MONITORING_POSITIONS"  # nothing was stopped


def test_settings_page_never_shows_secrets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HEDGE_BINANCE_API_KEY", "KEYVALUE-abcdef-123456")
    monkeypatch.setenv("HEDGE_BINANCE_API_SECRET", "SECRETVALUE-abcdef-654321")
    env = panel_env(tmp_path, demo_days=None, export=False)
    at = _run("pages/settings.py", env, monkeypatch)
    assert not at.exception
    shown = repr([d.value for d in at.dataframe]) + repr([m.value for m in at.markdown])
    assert "present" in shown
    assert "KEYVALUE" not in shown and "SECRETVALUE" not in shown


def test_settings_page_shows_runner_address_not_token(running_env, monkeypatch) -> None:
    at = _run("pages/settings.py", running_env, monkeypatch)
    shown = repr([d.value for d in at.dataframe])
    token = (Path(running_env["HEDGE_RUNNER_HOME"]) / "token").read_text().strip()
    assert "http://127.0.0.1:" in shown and token not in shown


def test_empty_database_store_is_created(tmp_path) -> None:
    env = panel_env(tmp_path, demo_days=None, export=False)
    assert Store(env["HEDGE_DB"], read_only=True).series().empty


def test_research_backtest_sweep_and_export(demo_env, monkeypatch) -> None:
    at = _run("pages/research.py", demo_env, monkeypatch)
    at.button(key="bt_go").click()
    at.run()
    assert not at.exception, at.exception
    kp = [d.value for d in at.dataframe if "kpi" in getattr(d.value, "columns", [])]
    assert kp and "net_pnl" in set(kp[0]["kpi"])
    at.text_input(key="sweep_xv").input("1000, 2000")
    at.selectbox(key="sweep_x").set_value("notional")
    at.button(key="sweep_go").click()
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 2  # tearsheet/equity + heatmap
    at.text_input(key="sweep_export_name").input("carry-swept")
    at.button(key="sweep_export").click()
    at.run()
    assert any("exported carry-swept@1" in s.value for s in at.success), [s.value for s in at.success]
    from hedge_core.params import store as param_store

    ps = param_store.load("carry-swept@1", root=demo_env["HEDGE_PARAMS_DIR"])
    assert ps.provenance["created_from"] == "panel" and ps.provenance["kpis"]


def test_research_sweep_rejects_bad_values(demo_env, monkeypatch) -> None:
    at = _run("pages/research.py", demo_env, monkeypatch)
    at.text_input(key="sweep_xv").input("0.01, oops")
    at.button(key="sweep_go").click()
    at.run()
    assert any("X values" in e.value for e in at.error), [e.value for e in at.error]


def test_detail_pause_resume_with_confirmation(running_env, monkeypatch) -> None:
    c = RunnerClient.discover(running_env["HEDGE_RUNNER_HOME"])
    at = _run("pages/hedge_detail.py", running_env, monkeypatch)
    at.selectbox(key="detail_select").set_value("pg-1")
    at.button(key="cmd_pause").click()
    at.run()
    assert any("Confirm **Pause**" in w.value for w in at.warning)
    assert c.hedge("pg-1")["state"] == "MONITORING_POSITIONS"  # nothing sent before the confirmation
    at.button(key="cmd_confirm").click()
    at.run()
    assert not at.exception, at.exception
    assert c.hedge("pg-1")["state"] == "PAUSED"
    at.button(key="cmd_resume").click()
    at.run()
    at.button(key="cmd_confirm").click()
    at.run()
    assert c.hedge("pg-1")["state"] == "MONITORING_POSITIONS"


def test_detail_overlays_a_backtest_of_the_hedges_set(running_env, monkeypatch) -> None:
    import json

    at = _run("pages/hedge_detail.py", running_env, monkeypatch)
    at.selectbox(key="detail_select").set_value("pg-1").run()
    at.toggle(key="detail_overlay").set_value(True).run()
    assert not at.exception, at.exception
    (chart,) = [c for c in at.get("plotly_chart") if "vs a backtest of carry-e2e@1" in c.proto.spec]
    names = [t["name"] for t in json.loads(chart.proto.spec)["data"]]
    assert names == ["this hedge (journal)", "backtest of its set"]


def test_detail_of_a_finished_hedge_offers_no_commands_and_downloads_its_ledger(running_env, monkeypatch) -> None:
    c = RunnerClient.discover(running_env["HEDGE_RUNNER_HOME"])
    c.start("carry-e2e", mode="paper", start="2024-01-01T05:00Z", speed=3600.0, hedge_id="pg-done")
    wait_for(lambda: c.hedge("pg-done").get("state") == "MONITORING_POSITIONS", 60, what="hedged")
    c.command("pg-done", "stop", "test")
    wait_for(lambda: c.hedge("pg-done").get("state") == "COMPLETED", 60, what="completed")
    at = _run("pages/hedge_detail.py", running_env, monkeypatch)
    at.selectbox(key="detail_select").set_value("pg-done").run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if str(b.key).startswith("cmd_")]  # no Pause/Resume/Rebalance/Stop
    assert any("the hedge is finished" in x.value for x in at.caption)
    dls = [b for b in at.get("download_button")]
    assert {b.proto.label.split(" (")[0] for b in dls} >= {"fills", "funding", "transitions", "orders"}


def test_sidebar_kill_switch_on_the_first_page(demo_env, monkeypatch) -> None:
    # AppTest drops the sidebar on reruns, so this checks the first run (the browser test
    # uses the kill switch from another page)
    for k, v in demo_env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.sidebar.button(key="flatten_all_go").disabled  # not confirmed (and no runner): disabled
    assert not at.sidebar.checkbox(key="flatten_all_confirm").value
    assert any("hedge runner start" in w.value for w in at.sidebar.warning)


def test_start_form_rejects_bad_replay_start(demo_env, monkeypatch) -> None:
    at = _run("pages/start_hedge.py", demo_env, monkeypatch)
    at.radio(key="start_paper_data").set_value("replay of stored history")
    at.text_input(key="start_replay_start").input("yesterday-ish")
    at.button(key="FormSubmitter:start-Start hedge").click()
    at.run()
    assert any("Not started — replay start:" in e.value for e in at.error), [e.value for e in at.error]


def test_import_with_an_idle_runner_stops_writes_and_restarts_it(tmp_path, monkeypatch) -> None:
    """No active hedge: the panel stops the runner (the single writer), imports, and starts it again."""
    import pandas as pd

    env = panel_env(tmp_path / "env", demo_days=3, export=False)
    env["HEDGE_PANEL_AUTOSTART"] = "1"
    proc = start_runner(env, tmp_path / "runner.log")
    home = env["HEDGE_RUNNER_HOME"]
    try:
        pid0 = RunnerClient.discover(home).pid
        src = tmp_path / "binance_SOLUSDT_spot_1h.csv"
        ts = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
        pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": 100.0, "high": 101.0, "low": 99.0,
                      "close": 100.5, "volume": 1.0}).to_csv(src, index=False)
        at = _run("pages/data.py", env, monkeypatch)
        at.text_input[0].input(str(src))
        at.button(key="FormSubmitter:import-Import").click()
        at.run()
        assert not at.exception, at.exception
        assert any("imported 48 rows" in s.value for s in at.success), [e.value for e in at.error]
        assert proc.wait(30) == 0  # the idle runner was stopped cleanly for the write ...
        c = RunnerClient.discover(home)  # ... and a new one started afterwards
        assert c.pid != pid0
        from hedge_core.ui.views.runner_link import connect, reader

        got = reader(connect(env["HEDGE_DB"], home, autostart=False)).series()
        assert ((got["venue"] == "binance") & (got["symbol"] == "SOL/USDT")).any()
    finally:
        kill_runner(home, proc)
