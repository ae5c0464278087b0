"""Liquidation side of :class:`~hedge_core.exchange.paper.core.PaperCore`: the adverse-extreme
check on each mark bar (isolated per position, cross for all cross positions) and the forced
close with fee, insurance cover and cancellation of the symbol's open orders.
"""

from __future__ import annotations

import math

from hedge_core import money
from hedge_core.exchange.paper.forced import record_forced_close
from hedge_core.exchange.paper.records import _ts
from hedge_core.types import Bar, MarginMode, OrderStatus, PositionSide


class _LiquidationMixin:
    """Liquidation methods of PaperCore (uses the margin mixin and the order book)."""

    def _check_liquidation(self, sym: str, bar: Bar) -> None:
        mine = self._sym_positions(sym)
        if not mine:
            return
        if self._mode(sym) is MarginMode.ISOLATED:
            for p in mine:  # each at its adverse extreme
                ext = bar.low if p.qty > 0 else bar.high
                if p.margin + money.unrealized_pnl(p.qty, ext, p.entry) < self._mm(sym, p.qty, ext):
                    lp = self._liq_price((sym, p.pside), p, MarginMode.ISOLATED, {})
                    self._liquidate([((sym, p.pside), self._gap_adjusted(lp, p.qty, bar))], bar,
                                    MarginMode.ISOLATED)
            return
        xc = self._cross_cache()
        own = xc.get(sym, (0.0, 0.0, 0.0))
        # other symbols at their last mark; exact sums, then this symbol's share removed
        others_u = math.fsum(v[0] for v in xc.values()) - own[0]
        others_mm = math.fsum(v[1] for v in xc.values()) - own[1]
        wallet = self.wallet - self._iso_total()
        for ext in (bar.low, bar.high):
            u, mm, _ = self._contrib(sym, ext)
            if wallet + others_u + u < others_mm + mm:
                cross = [((p.symbol, p.pside), p) for p in self.positions.values()
                         if p.qty != 0.0 and self._mode(p.symbol) is MarginMode.CROSS]
                prices = {k: (ext if p.symbol == sym else self._mark(p.symbol)) for k, p in cross}
                plan = []
                for k, p in cross:
                    if p.symbol == sym:
                        lp = self._liq_price(k, p, MarginMode.CROSS, prices)
                        plan.append((k, self._gap_adjusted(lp, p.qty, bar)))
                    else:
                        plan.append((k, prices[k]))
                self._liquidate(plan, bar, MarginMode.CROSS)
                return

    @staticmethod
    def _gap_adjusted(lp: float, qty: float, bar: Bar) -> float:
        """Liquidation fill: at the liquidation price, or at the bar open when the mark opened
        beyond it; kept inside the bar's range."""
        px = min(lp, bar.open) if qty > 0 else max(lp, bar.open)
        return min(max(px, bar.low), bar.high)

    def _liquidate(self, plan: list[tuple[tuple[str, PositionSide], float]], bar: Bar,
                   mode: MarginMode) -> None:
        rate = self.config.liquidation_fee_rate
        symbols = set()
        for key, px in plan:
            p = self.positions[key]
            if p.qty == 0.0:
                continue
            symbols.add(p.symbol)
            self._lseq += 1
            lid = f"liq-{self._lseq}"
            q = abs(p.qty)
            realized = money.unrealized_pnl(p.qty, px, p.entry)  # closed whole at px
            fee = money.fee(q, px, rate)
            delta = realized - fee
            cover = 0.0
            if mode is MarginMode.ISOLATED and delta < -p.margin:
                cover, delta = -p.margin - delta, -p.margin
            self.wallet += delta
            rec = {"id": lid, "ts": _ts(self.now), "symbol": p.symbol, "position_side": p.pside.value,
                   "margin_mode": mode.value, "qty": p.qty, "entry_price": p.entry, "price": px,
                   "mark_bar_ts": _ts(bar.ts), "fee": fee, "realized_pnl": realized, "insurance_cover": cover}
            record_forced_close(self, p, lid, px, fee, self.now)
            self._refresh(p.symbol)
            self.liquidations.append(rec)
        if mode is MarginMode.CROSS and self._cross_wallet() < 0:
            cover = -self._cross_wallet()
            self.wallet += cover
            if self.liquidations:
                self.liquidations[-1]["insurance_cover"] += cover
        for oid in list(self._open):
            o = self.orders[oid]
            if o.perp and o.symbol in symbols:
                self._close_order(o, OrderStatus.CANCELED)
