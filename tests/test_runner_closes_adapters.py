"""The runner closes every venue client it opened (a ccxt client left open leaks its aiohttp session: "Unclosed
client session" at garbage collection). In process, paper on the demo market; the venue clients here are
stand-ins that count their ``close`` calls (the real ccxt ones are closed by the same calls).

- shutdown: each hedge's adapter AND, paper on live data, the venue's public market-data adapter
  (``HedgeTask.market_data``; before, only the adapter was closed);
- a hedge whose recovery fails: the adapter built for it (before, left open for the runner's life).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.exchange.paper import PaperExchange
from hedge_core.runner.hedge import HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

CARRY = {"strategy": "carry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0}


def request(**kw) -> dict:
    return {"hedge_id": "c1", "mode": "paper", "feed": "replay", "data_venue": "demo", "start": str(START),
            "end": str(START + pd.Timedelta(hours=30)), "speed": 1.0, "venue": "binance", "params_inline": CARRY,
            "balances": {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}, **kw}


class Counted:
    """A venue client stand-in (a ccxt one has no paper ``core``): counts ``close``, every other attribute is
    ``inner``'s."""

    def __init__(self, inner: object = None) -> None:
        self.closed = 0
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "core" or self._inner is None:
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def close(self) -> None:
        self.closed += 1


def test_shutdown_closes_the_adapter_and_the_market_data_of_each_hedge(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        await sup.start_hedge(request())
        h = sup.hedges["c1"]
        md = h.market_data = Counted()  # what a paper hedge on live bars holds: the venue's public data
        await sup.shutdown(flatten=False)
        assert md.closed == 1 and h.raw_adapter.closed

    asyncio.run(go())


def test_a_hedge_whose_recovery_fails_has_its_adapter_closed(store: Store, tmp_path: Path, monkeypatch) -> None:
    async def go() -> None:
        first = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        await first.start_hedge(request())  # a replay at 1x: still running when the "crash" comes
        h = first.hedges["c1"]
        h.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await h.task
        first.journal.flush()

        again = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        built: list[Counted] = []

        def adapter_for(spec, *, confirm_live=False):
            built.append(Counted(PaperExchange()))
            return built[-1]

        async def broken(self, last_state, started_at):
            self.market_data = md
            raise RuntimeError("the venue answers nothing")

        md = Counted()
        monkeypatch.setattr(again, "_adapter_for", adapter_for)
        monkeypatch.setattr(HedgeTask, "recover", broken)
        [rep] = await again.recover_all()
        assert "the venue answers nothing" in rep["error"] and not again.hedges
        assert [a.closed for a in built] == [1] and md.closed == 1
        await again.shutdown(flatten=False)

    asyncio.run(go())
