"""Persistence of :class:`~hedge_core.exchange.paper.core.PaperCore`: a complete JSON-serialisable
``state_dict`` and ``from_state`` that rebuilds an identical core."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.config import PaperConfig
from hedge_core.exchange.paper.records import _Ord, _Pos, _pts, _ts
from hedge_core.types import (
    Bar,
    Fill,
    FundingPayment,
    FundingRate,
    Liquidity,
    MarginMode,
    MarketKind,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
)

if TYPE_CHECKING:
    from hedge_core.exchange.paper.core import PaperCore


class _StateMixin:
    """``state_dict`` / ``from_state`` of PaperCore."""

    def state_dict(self) -> dict[str, Any]:
        """Complete JSON-serialisable state; :meth:`from_state` rebuilds an identical core."""
        def bar_d(b: Bar) -> list[Any]:
            return [b.ts.isoformat(), b.venue, b.symbol, b.kind.value, b.open, b.high, b.low, b.close,
                    b.volume, b.timeframe]

        def fill_d(f: Fill) -> list[Any]:
            return [f.trade_id, f.order_id, f.client_order_id, f.symbol, f.side.value, f.qty, f.price, f.fee,
                    f.ts.isoformat(), f.fee_currency, f.liquidity.value, f.slippage]

        rng = self._rng.getstate()
        return {
            "version": 1,
            "config": self.config.to_dict(),
            "now": _ts(self.now),
            "spot": dict(self.spot),
            "spot_locked": dict(self.spot_locked),
            "wallet": self.wallet,
            "position_mode": self.position_mode.value,
            "leverage": dict(self.leverage),
            "margin_mode": {k: v.value for k, v in self.margin_mode.items()},
            "positions": [[p.symbol, p.pside.value, p.qty, p.entry, p.margin] for p in self.positions.values()],
            "orders": [[o.id, o.cid, o.symbol, o.side.value, o.type.value, o.qty, o.price, o.reduce_only,
                        o.pside.value, o.ts.isoformat(), o.perp, o.filled, o.cost, o.fee, o.status.value,
                        o.locked] for o in self.orders.values()],
            "open": list(self._open),
            "fills": [fill_d(f) for f in self.fills],
            "funding_payments": [[f.symbol, f.ts.isoformat(), f.amount, f.rate, f.position_qty, f.mark_price]
                                 for f in self.funding_payments],
            "funding_history": [[f.symbol, f.ts.isoformat(), f.rate, f.interval_hours, f.mark_price]
                                for f in self.funding_history],
            "liquidations": [dict(r) for r in self.liquidations],
            "transfers": [dict(r) for r in self.transfers],
            "deliveries": [dict(r) for r in self.deliveries],
            "delivered": list(self.delivered),
            "delivery_samples": {k: list(v) for k, v in self.delivery_samples.items()},
            "last_bar": [bar_d(b) for b in self.last_bar.values()],
            "budget": {k: (None if math.isinf(v) else v) for k, v in self._budget.items()},
            "seq": [self._seq, self._tseq, self._lseq],
            "rng": [rng[0], list(rng[1]), rng[2]],
            "last_event_key": (None if (k := self.last_event_key) is None
                               else [k[0].isoformat(), k[1], k[2], k[3]]),
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> PaperCore:
        """Rebuild a core from :meth:`state_dict` output (e.g. after ``json.loads``)."""
        if d.get("version") != 1:
            raise InvalidInput("state.version", d.get("version"), "1")
        core = cls(PaperConfig.from_dict(d["config"]))
        core.now = _pts(d["now"])
        core.spot = {k: float(v) for k, v in d["spot"].items()}
        core.spot_locked = {k: float(v) for k, v in d["spot_locked"].items()}
        core.wallet = float(d["wallet"])
        core.position_mode = PositionMode(d["position_mode"])
        core.leverage = {k: float(v) for k, v in d["leverage"].items()}
        core.margin_mode = {k: MarginMode(v) for k, v in d["margin_mode"].items()}
        core.positions = {}
        for sym, ps, q, e, m in d["positions"]:
            core.positions[(sym, PositionSide(ps))] = _Pos(sym, PositionSide(ps), q, e, m)
        core.orders = {}
        for r in d["orders"]:
            o = _Ord(r[0], r[1], r[2], Side(r[3]), OrderType(r[4]), r[5], r[6], r[7], PositionSide(r[8]),
                     pd.Timestamp(r[9]), r[10], r[11], r[12], r[13], OrderStatus(r[14]), r[15])
            core.orders[o.id] = o
            core._by_cid[o.cid] = o.id
        core._open = list(d["open"])
        core.fills = [Fill(r[0], r[1], r[2], r[3], Side(r[4]), r[5], r[6], r[7], pd.Timestamp(r[8]), r[9],
                           Liquidity(r[10]), r[11]) for r in d["fills"]]
        core.funding_payments = [FundingPayment(r[0], pd.Timestamp(r[1]), r[2], r[3], r[4], r[5])
                                 for r in d["funding_payments"]]
        core.funding_history = [FundingRate(r[0], pd.Timestamp(r[1]), r[2], r[3], r[4])
                                for r in d["funding_history"]]
        core.liquidations = [dict(r) for r in d["liquidations"]]
        core.transfers = [dict(r) for r in d["transfers"]]
        # dated futures delivered at expiry (paper.delivery); absent from states saved before delivery existed
        core.deliveries = [dict(r) for r in d.get("deliveries", [])]
        core.delivered = [str(s) for s in d.get("delivered", [])]
        core.delivery_samples = {str(k): [float(x) for x in v] for k, v in d.get("delivery_samples", {}).items()}
        core.last_bar = {}
        for r in d["last_bar"]:
            b = Bar(pd.Timestamp(r[0]), r[1], r[2], MarketKind(r[3]), r[4], r[5], r[6], r[7], r[8], r[9])
            core.last_bar[(b.symbol, b.kind)] = b
        core._budget = {k: (math.inf if v is None else float(v)) for k, v in d["budget"].items()}
        core._seq, core._tseq, core._lseq = d["seq"]
        r = d["rng"]
        core._rng.setstate((r[0], tuple(r[1]), r[2]))
        k = d.get("last_event_key")
        core._restored_key = None if k is None else (pd.Timestamp(k[0]), int(k[1]), int(k[2]), str(k[3]))
        return core
