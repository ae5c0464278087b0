"""A perp PAIR (two perp legs: the first on the Binance simulator's USD-M side, the second on the Bybit simulator's
linear side) in a real runner process: its parameter set exported and promoted, the runner's environment reaching
both simulators through a pair adapter factory, the pair's start fields, and waiting for funding booked per venue.
Used by the pair runner tests (tests/test_pair_*_runner.py, tests/test_xvenue_perp_perp_live_runner.py); their
assertions stay in the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tests.support.live_runner import live_env
from tests.support.runner_env import Env, wait_for

PAIR_START: dict[str, str] = {"venue": "binance", "perp_venue": "bybit", "legs": "perp_perp"}  # HedgeSpec routing


def export_pair(env: Env, name: str, params: dict[str, Any], *, live: bool = True) -> None:
    """Export ``params`` (``CrossCarryParams`` fields) as parameter set ``name`` v1 and promote it to paper, and to
    live when ``live`` (the paper-run gate waived)."""
    from hedge_core.params import promotion
    from hedge_core.params import store as param_store
    from hedge_core.params.xcarry import CrossCarryParams

    param_store.export(CrossCarryParams(**params), name, created_from="test", root=env.params, db=env.db,
                       kpis={"sharpe": 1.0})
    promotion.promote(name, 1, "paper", root=env.params, db=env.db)
    if live:
        promotion.promote(name, 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                          root=env.params, db=env.db)


def pair_runner_env(tmp: Path, binance: Any, bybit: Any, factory: str, name: str, params: dict[str, Any], *,
                    live: bool = True, days: int = 3) -> tuple[Env, dict[str, str]]:
    """The runner environment (``days`` of stored data) with the pair set ``name`` (:func:`export_pair`) and the
    runner's extra environment: the adapter ``factory`` (module:function) reaching the Binance simulator thread
    ``binance`` and the Bybit one ``bybit``."""
    env, extra = live_env(tmp, binance, days=days)
    export_pair(env, name, params, live=live)
    return env, {**extra, "HEDGE_RUNNER_ADAPTER_FACTORY": factory, "HEDGE_TEST_BYBIT_PORT": str(bybit.server.port)}


def funding_booked(c: Any, hid: str, want: Any, *, timeout: float = 60, what: str = "funding booked"
                   ) -> pd.DataFrame:
    """Wait (``timeout`` s) until the hedge ``hid``'s journaled funding payments (runner client ``c``) satisfy
    ``want(frame) -> bool`` (``what``: the condition, for the timeout's message); returns that frame."""
    def booked() -> list[pd.DataFrame] | None:
        fj = c.history("funding_payments", hedge_id=hid)
        return [fj] if len(fj) and want(fj) else None

    [fj] = wait_for(booked, timeout=timeout, what=what)
    return fj
