"""OKX delivery bills read page by page (``CcxtLiveAdapter.fetch_deliveries`` -> ``_okx_deliveries``), real ccxt
against the OKX simulator, which pages "Get bills details" as OKX documents it
(https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details): newest first, ``limit`` at most 100,
``after`` = the bills before that bill id; ``GET /api/v5/account/bills`` reaches back 7 days,
``/account/bills-archive`` 3 months.

Before: one page of ``/account/bills`` was read, so a delivery behind 100 newer delivery bills of the account (other
dated contracts delivered since), or older than 7 days, was never booked.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.types import Side
from tests.support.live_env import OKX_QTR, okx_env, okx_quarterly

pytestmark = pytest.mark.integration  # the OKX simulator on 127.0.0.1
DAY = 86_400_000


def _other_deliveries(sim, times_ms: list[int]) -> None:
    """Delivery bills (type 3, subType 112) of OTHER dated contracts of the account at ``times_ms`` (ascending: the
    venue's bill ids grow with time), shaped as the simulator's own delivery bill."""
    for k, t in enumerate(times_ms):
        sim._seq += 1
        sim.bills.append({"billId": str(900_000 + sim._seq), "instType": "FUTURES", "instId": f"ETH-USDT-X{k}",
                          "ccy": "USDT", "type": "3", "subType": "112", "balChg": "1", "bal": "0", "posBalChg": "0",
                          "posBal": "0", "sz": "1", "px": "2000", "pnl": "1", "fee": "0", "mgnMode": "cross",
                          "ordId": "", "tradeId": "", "execType": "", "ts": str(t)})


def _pages(sim, path: str) -> list[dict]:
    return [q for _m, p, q in sim.requests if p == f"/api/v5/account/{path}"]


@pytest.mark.parametrize("age_days,since_days,recent_pages,archive_pages", [
    (2, 3, 2, 0),     # within 7 days, behind 130 newer delivery bills: the second page of /account/bills
    (10, 11, 2, 3),   # older than 7 days: /account/bills-archive, behind 250 newer bills (its third page)
    (10, None, 2, 3),  # no start: both endpoints, every page
], ids=["recent-second-page", "archive-third-page", "no-since"])
def test_an_okx_delivery_behind_full_pages_of_bills_is_read(age_days, since_days, recent_pages, archive_pages):
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            okx_quarterly(sim)
            await a.load_markets()
            [(fut, _expiry)] = await a.dated_futures("BTC")
            now = sim.now_ms()
            sim.positions[OKX_QTR] = [-2.0, 30_300.0]  # 2 contracts of 0.01 BTC short
            sim.deliver(OKX_QTR, [30_100.0], at_ms=now - age_days * DAY)
            [ours] = [b for b in sim.bills if b["type"] == "3"]
            older = [now - 9 * DAY + k * 1_000 for k in range(120)] if age_days > 7 else []  # archive only
            _other_deliveries(sim, older + [now - DAY + k * 1_000 for k in range(130)])
            sim.requests.clear()
            since = None if since_days is None else pd.Timestamp(now - since_days * DAY, unit="ms", tz="UTC")
            [d] = await a.fetch_deliveries(fut, since)
            assert d.trade_id == f"delivery:{ours['billId']}" and d.side is Side.BUY
            assert d.qty == pytest.approx(0.02) and d.price == pytest.approx(30_100.0)
            assert d.ts == pd.Timestamp(int(ours["ts"]), unit="ms", tz="UTC")
            recent, archive = _pages(sim, "bills"), _pages(sim, "bills-archive")
            assert len(recent) == recent_pages and len(archive) == archive_pages
            for reqs in (recent, archive):  # 100 a page; each next page after the previous page's oldest bill id
                assert all(q["limit"] == "100" and q["type"] == "3" for q in reqs)
                assert [("after" in q) for q in reqs] == [i > 0 for i in range(len(reqs))]
            assert all(("begin" in q) == (since is not None) for q in recent + archive)
    asyncio.run(go())
