"""Driving a LIVE hedge's calendar roll (or delivery) through real runner processes: the parameter overrides with
the roll enabled, the dated contract 90 days out, the live start, "settled on a contract", the restart killed at a
kill point, and the orderly stop. Used by the roll/delivery runner tests (tests/test_*roll_runner.py,
tests/test_live_delivery_runner.py); their assertions stay in the tests."""

from __future__ import annotations

import time
from typing import Any

from tests.support.runner_env import Env, wait_for

# No exit rule, no funding-cost guard, no rebalance cool-down: only the roll rule moves the leg.
ROLL_PARAMS: dict[str, Any] = {
    "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
             "funding_unfavourable_intervals": None},
    "guards": {"funding_cost_apr_limit": None}, "rebalance": {"cooldown_s": 0.0}, "roll": {"enabled": True}}

# The live start every roll test uses: ticker feed polled every 0.1 s, recovery "resume", the venue's records read
# every 0.3 s, a reconciliation pass every 0.5 s, a ticker older than 5 s refused.
LIVE_START: dict[str, Any] = {"mode": "live", "feed": "ticker", "poll_s": 0.1, "recovery": "resume",
                              "confirm_live": True, "reconcile_s": 0.5, "records_poll_s": 0.3,
                              "max_ticker_age_s": 5.0}

DAY_MS = 86_400_000


def delivery_ms(now_ms: int, days: int = 90) -> int:
    """The delivery time (ms since the epoch, UTC) ``days`` whole days after ``now_ms``'s day, at 08:00 UTC (the
    delivery hour of Binance's quarterlies and Bybit's/OKX's dated futures)."""
    return (now_ms // DAY_MS + days) * DAY_MS + 8 * 3_600_000


def dated_symbol(perp: str, delivery: int) -> str:
    """The ccxt symbol of the dated future on ``perp``'s market delivering at ``delivery`` (ms): ``perp-YYMMDD``."""
    return f"{perp}-{time.strftime('%y%m%d', time.gmtime(delivery / 1000))}"


def start_live(c: Any, params: str, hid: str, **venues: Any) -> None:
    """Start the hedge ``hid`` from parameter set ``params`` live on the runner client ``c`` with :data:`LIVE_START`;
    ``venues``: the routing (``venue``, ``perp_venue``, ``legs``)."""
    c.start(params, hedge_id=hid, **LIVE_START, **venues)


def settled_on(env: Env, p: Any, hid: str, contract: str, *, timeout: float = 90,
               leg: str = "the leg") -> dict:
    """Wait (``timeout`` s) for hedge ``hid`` monitoring with its leg on ``contract`` (ccxt symbol), nothing working
    and no roll under way, then (30 s) for a NEW reconciliation pass with no difference; returns that hedge view."""
    c = env.client(p)

    def ready() -> dict | None:
        h = c.hedge(hid)
        ok = (h.get("state") == "MONITORING_POSITIONS" and h.get("leg_contract") == contract
              and not h.get("pending_orders") and "roll" not in h)
        return h if ok else None

    h0 = wait_for(ready, timeout=timeout, what=f"{leg} settled on {contract}")
    ts0 = (h0.get("reconcile") or {}).get("ts")
    return wait_for(lambda: (lambda h: h if ready() and (h.get("reconcile") or {}).get("ts") not in (None, ts0)
                             and h["reconcile"]["differences"] == [] else None)(c.hedge(hid)),
                    timeout=30, what="a clean reconciliation pass")


def restart_killed_at(env: Env, extra: dict[str, str], old: Any, kill_at: str) -> int:
    """SIGKILL the runner ``old``, start a new one that SIGKILLs itself at ``kill_at`` (runner/killpoints.py; not
    waited for: a recovering runner may reach its kill point before it would answer); returns its exit code
    (-9 when it killed itself, within 90 s)."""
    old.kill()
    old.wait(30)
    p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": kill_at}, wait=False)
    return p.wait(90)


def pause_and_stop(env: Env, p: Any, hid: str) -> None:
    """Pause hedge ``hid`` on runner ``p``, wait for PAUSED, then stop the runner (SIGTERM, 60 s)."""
    c = env.client(p)
    c.pause(hid)
    wait_for(lambda: c.hedge(hid).get("state") == "PAUSED", what="paused")
    p.terminate()
    p.wait(60)
