"""The runner/params/carry CLI: --help everywhere, params commands, carry validation, connectivity and
balance checks before any order, and Ctrl+C of a one-shot carry closing both legs (real process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from hedge_core.runner.cli import build_app
from tests.support.browser import EXITS_OFF
from tests.support.runner_env import DEMO_START, REPO, make_env

pytestmark = pytest.mark.timeout(180)
runner = CliRunner()


def invoke(args, env=None):
    return runner.invoke(build_app(), args, env=env, catch_exceptions=False)


def _commands(app, prefix=()):
    import typer.main

    group = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        out.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + (name,))
    walk(group, tuple(prefix))
    return out


def test_every_command_has_help():
    paths = _commands(build_app())
    names = {" ".join(p) for p in paths}
    for want in ("runner start", "runner stop", "runner status", "start", "stop", "pause", "resume", "flatten-all",
                 "carry", "params list", "params show", "params export", "params import", "params promote",
                 "params diff"):
        assert want in names, want
    for p in paths:
        r = invoke([*p, "--help"])
        assert r.exit_code == 0, (p, r.output)
        assert "Usage" in r.output


def test_params_commands(tmp_path):
    env = {"HEDGE_PARAMS_DIR": str(tmp_path / "p"), "HEDGE_DB": str(tmp_path / "db.duckdb"),
           "HEDGE_RUNNER_HOME": str(tmp_path / "home")}
    r = invoke(["params", "export", "c1", "--set", "notional=500", "--set", "rebalance.drift_threshold=0.03",
                "--set", "exit.stop_loss_pct=off", "--kpi", "sharpe=1.2"], env)
    assert r.exit_code == 0, r.output
    assert "exported c1@1" in r.output
    r = invoke(["params", "export", "c1", "--set", "notional=900"], env)
    assert "c1@2" in r.output
    r = invoke(["params", "list"], env)
    assert "c1" in r.output and "draft" in r.output and "sharpe=1.2" in r.output
    r = invoke(["params", "show", "c1@1"], env)
    assert "notional = 500.0" in r.output and 'stop_loss_pct = "off"' in r.output
    r = invoke(["params", "diff", "c1@1", "c1@2"], env)
    assert "params.notional" in r.output and "params.rebalance.drift_threshold" in r.output
    bad = invoke(["params", "export", "c2", "--set", "notional=-1"], env)
    assert bad.exit_code == 2 and "notional=-1" in bad.output and "> 0" in bad.output
    assert not (tmp_path / "p" / "c2").exists() or not list((tmp_path / "p" / "c2").glob("v*.toml"))
    r = invoke(["params", "import", str(tmp_path / "p" / "c1" / "v1.toml"), "--name", "c3"], env)
    assert r.exit_code == 0 and "c3@1" in r.output
    r = invoke(["params", "promote", "c1@1", "--to", "live", "--yes"], env)
    assert r.exit_code == 2 and "'paper' first" in r.output
    assert invoke(["params", "promote", "c1@1", "--to", "paper"], env).exit_code == 0
    r = invoke(["params", "promote", "c1@1", "--to", "live", "--yes"], env)
    assert r.exit_code == 2 and "completed paper run" in r.output  # no paper run in hedge_runs
    r = invoke(["params", "promote", "c1@1", "--to", "live"], env)
    assert r.exit_code == 2
    r = invoke(["params", "promote", "c1@1", "--to", "live", "--yes", "--no-paper-gate"], env)
    assert r.exit_code == 0 and "now live" in r.output


@pytest.mark.parametrize("args,fragment", [
    (["--amount", "5"], "amount=5.0 is not allowed; expected 10 to 10000 USDT"),
    (["--amount", "10001"], "amount=10001.0"),
    (["--amount", "50", "--min-amount", "100"], "expected 100 to 10000"),
    (["--amount", "100", "--max-position-imbalance", "0"], "drift_threshold"),
    (["--amount", "100", "--mode", "live"], "--yes-live"),
    (["--amount", "100", "--max-execution-time", "-1"], "max_execution_time"),
])
def test_carry_rejects_bad_input_before_anything(tmp_path, args, fragment):
    r = invoke(["carry", *args, "--home", str(tmp_path / "h"), "--db", str(tmp_path / "db.duckdb")])
    assert r.exit_code == 2
    assert fragment in r.output
    assert not (tmp_path / "db.duckdb").exists()  # nothing opened, nothing written


def test_carry_dry_run_checks_and_sends_nothing(tmp_path):
    e = make_env(tmp_path, days=3)
    r = invoke(["carry", "--amount", "500", "--dry-run", "--home", str(tmp_path / "h"), "--db", str(e.db)])
    assert r.exit_code == 0, r.output
    assert "balances ok" in r.output and "nothing sent" in r.output
    assert "size: 500.00 USDT within" in r.output and "perp min notional 100 USDT" in r.output
    st = e.store()
    assert len(st.read_table("orders")) == 0 and len(st.read_table("hedge_runs")) == 0
    assert not list((tmp_path / "h" / "paper").glob("*.json"))  # no paper venue state file either


def test_carry_dry_run_refuses_an_amount_below_the_perp_minimum_naming_the_smallest(tmp_path):
    """Issue #12 (b): 100 USDT buys 0.002 BTC at ~42,000 (paper lot 0.00001 -> 0.00238, but the perp
    lot 0.001 hedges only 0.002 BTC = ~84 USDT < the 100 USDT perp MIN_NOTIONAL). The dry run says
    so and names the smallest hedgeable amount; the demo market's first replay bar is the price."""
    e = make_env(tmp_path, days=3)
    with e.store() as st:
        first = float(st.read_bars("demo", "BTC/USDT", "spot", "1h")["close"].iloc[0])
    r = invoke(["carry", "--amount", "100", "--dry-run", "--home", str(tmp_path / "h"), "--db", str(e.db)])
    assert r.exit_code == 2, r.output
    # smallest: perp qty ceil(100 / (P x 0.99) / 0.001) x 0.001 (= 0.003 for P near 42,000), bought at P x 1.01
    import math
    q = math.ceil(100 / (first * 0.99) / 0.001 - 1e-9) * 0.001
    assert f"{q * first * 1.01:,.2f}" in r.output and "smallest hedgeable" in r.output
    assert "perp min notional 100 USDT" in r.output and "amount=100.0" in r.output
    assert not list((tmp_path / "h" / "paper").glob("*.json"))  # the refusal left no paper state file


def test_carry_ctrl_c_closes_both_legs(tmp_path):
    e = make_env(tmp_path, days=5)
    p = subprocess.Popen([sys.executable, "-m", "hedge_core.runner.cli", "carry", "--amount", "1000",
                          "--min-funding-rate", "0.00001", "--start", DEMO_START, "--speed", "7200",
                          "--home", str(tmp_path / "h"), "--db", str(e.db)], cwd=REPO, env=e.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ln = p.stdout.readline()
        if not ln:
            break
        lines.append(ln)
        if "-> MONITORING_POSITIONS" in ln:
            break
    assert any("-> MONITORING_POSITIONS" in ln for ln in lines), "".join(lines)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, "".join(lines) + out
    assert "spot 0, perp 0" in out
    st = e.store()
    runs = st.read_table("hedge_runs")
    assert list(runs["state"]) == ["COMPLETED"]
    fills = st.read_table("fills")
    for leg in ("spot", "perp"):  # both legs opened and closed
        f = fills[fills["leg"] == leg]
        signed = (f["qty"] * f["side"].map({"buy": 1.0, "sell": -1.0})).sum()
        assert len(f) >= 2 and abs(signed) < 1e-9


def test_carry_live_checks_connectivity_and_balances_on_the_simulator(tmp_path):
    from tests.support import live_env as sim_env
    from tests.support.live_env import TEST_KEY, TEST_SECRET
    from tests.support.sim_thread import SimThread
    from tests.support.simfactory import FACTORY

    sim = SimThread()
    try:
        ca = tmp_path / "ca.pem"
        sim_env.test_ca().cert_pem.write_to_path(str(ca))
        env = {"HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_SIM_PORT": str(sim.server.port),
               "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY, "HEDGE_TEST_SIM_SECRET": TEST_SECRET}
        base = ["carry", "--mode", "live", "--yes-live", "--dry-run", "--home", str(tmp_path / "h"),
                "--db", str(tmp_path / "db.duckdb")]
        ok = invoke([*base, "--amount", "500"], env)
        assert ok.exit_code == 0, ok.output
        assert "balances ok (spot 10000.00" in ok.output
        poor = invoke([*base, "--amount", "9999"], env)  # the simulator's spot wallet holds 10,000 USDT
        # largest: the sim's 10,000 USDT futures wallet at 1x (min_leverage) for the perp notional at a 1 %
        # higher price plus the 0.05 % fee to open and to close: 10,000 / (1.01 x (1 + 0.001)) = 9,891.10
        assert poor.exit_code == 2 and "9,891.10" in poor.output and "perp margin 10,000.00 USDT free" in poor.output
        down = invoke([*base, "--amount", "500"], {**env, "HEDGE_TEST_SIM_PORT": "1"})  # nothing listens there
        assert down.exit_code == 2 and "error" in down.output
        assert not any("order" in r[1] and r[0] == "POST" for r in sim.sim.requests)  # no order was ever sent
    finally:
        sim.close()


def test_runner_start_status_hedge_commands_and_stop_through_the_cli(tmp_path):
    # exits and the funding-cost guard off (as tests/support/browser.py's panel_env): the hedge stays on until
    # the CLI stops it, so the replay can run at 10800x (it enters 12 bars after the start, ~4 s, not ~12 s)
    e = make_env(tmp_path, days=5, export={"guards": {"funding_cost_apr_limit": None}, **EXITS_OFF})

    def cli(*args, ok=True):
        r = subprocess.run([sys.executable, "-m", "hedge_core.runner.cli", *args], cwd=REPO, env=e.env,
                           capture_output=True, text=True, timeout=120)
        if ok:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    assert "runner started" in cli("runner", "start", "--db", str(e.db)).stdout
    try:
        assert "runner already running" in cli("runner", "start").stdout
        out = cli("start", "--params", "carry-test@1", "--mode", "paper", "--start", DEMO_START, "--speed", "10800",
                  "--id", "c1").stdout
        assert "started c1 (paper, carry-test@1)" in out
        bad = cli("start", "--params", "carry-test@7", ok=False)
        assert bad.returncode == 2 and "version=7" in bad.stderr
        small = cli("start", "--params", "carry-test@1", "--start", DEMO_START, "--size", "5", ok=False)
        assert small.returncode == 2 and "amount=5.0" in small.stderr and "smallest hedgeable" in small.stderr
        dry = cli("start", "--params", "carry-test@1", "--start", DEMO_START, "--size", "2000", "--dry-run").stdout
        assert "size: 2,000.00 USDT within" in dry and "nothing started" in dry
        from hedge_core.runner.client import RunnerClient, wait_for_state

        wait_for_state(RunnerClient.discover(e.home), "c1", "MONITORING_POSITIONS", timeout=60)
        st = cli("runner", "status").stdout
        assert "c1" in st and "MONITORING_POSITIONS" in st and "heartbeat" in st
        assert "PAUSED" in cli("pause", "c1").stdout
        assert "MONITORING_POSITIONS" in cli("resume", "c1").stdout
        cli("stop", "c1")
        wait_for_state(RunnerClient.discover(e.home), "c1", "COMPLETED", timeout=60)
        assert "c1" in cli("hedges").stdout
    finally:
        r = cli("runner", "stop", ok=False)
    assert r.returncode == 0 and "runner stopped" in r.stdout
    assert cli("runner", "status", ok=False).returncode == 1
