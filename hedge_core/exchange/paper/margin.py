"""Margin side of :class:`~hedge_core.exchange.paper.core.PaperCore`: available / withdrawable
margin, the derived per-symbol cross/isolated cache, maintenance margin, liquidation prices and
the positions view. Formulas are calls into :mod:`hedge_core.money` and
:mod:`hedge_core.analytics.risk`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from hedge_core import money
from hedge_core.analytics.risk import liquidation_price, maintenance_margin
from hedge_core.exchange.paper.config import _PSIDES
from hedge_core.exchange.paper.records import _Ord, _Pos
from hedge_core.types import MarginMode, Position, PositionMode, PositionSide, Side


class _MarginMixin:
    """Margin methods of PaperCore (uses its positions, orders, wallet, settings and marks)."""

    def _upnl(self, p: _Pos, price: float) -> float:
        return money.unrealized_pnl(p.qty, price, p.entry)

    def _order_margin(self) -> float:
        tot = 0.0
        for oid in self._open:
            o = self.orders[oid]
            if o.perp and not o.reduce_only and o.price is not None and self._increases(o):
                tot += (o.qty - o.filled) * o.price / self._lev(o.symbol)
        return tot

    def _increases(self, o: _Ord) -> bool:
        if self.position_mode is PositionMode.HEDGE:
            return (o.pside is PositionSide.LONG) == (o.side is Side.BUY)
        return True  # one-way: conservatively reserve for every non-reduce-only order

    def perp_available(self) -> float:
        """Available margin, USDT: wallet - isolated margins + cross uPnL - cross initial margin
        - open-order margin. Can be negative when losses eat the margin."""
        xc = self._cross_cache()
        upnl = math.fsum(v[0] for v in xc.values())
        im = math.fsum(v[2] for v in xc.values())
        return self.wallet - self._iso_total() + upnl - im - self._order_margin()

    # ---- derived cache ---------------------------------------------------------------------
    # Sums use math.fsum (exactly rounded, order independent), so a core rebuilt by from_state
    # computes bit-identical margins to the uninterrupted one.
    def _sym_positions(self, sym: str) -> list[_Pos]:
        out = []
        for ps in _PSIDES:
            p = self.positions.get((sym, ps))
            if p is not None and p.qty != 0.0:
                out.append(p)
        return out

    def _contrib(self, sym: str, mark: float) -> tuple[float, float, float]:
        """(uPnL, maintenance margin, initial margin) of the symbol's positions at ``mark``."""
        lev = self._lev(sym)
        u = mm = im = 0.0
        for p in self._sym_positions(sym):
            u += money.unrealized_pnl(p.qty, mark, p.entry)
            mm += self._mm(sym, p.qty, mark)
            im += money.isolated_margin(p.qty, mark, lev)
        return u, mm, im

    def _cross_cache(self) -> dict[str, tuple[float, float, float]]:
        if self._xc is None:
            self._xc, self._xi = {}, {}
            for sym in {p.symbol for p in self.positions.values() if p.qty != 0.0}:
                self._refresh(sym)
        return self._xc

    def _refresh(self, sym: str) -> None:
        """Recompute one symbol's cache entries after its positions, settings or mark changed."""
        xc, xi = self._xc, self._xi
        if xc is None:
            return
        xc.pop(sym, None)
        xi.pop(sym, None)
        mine = self._sym_positions(sym)
        if not mine:
            return
        if self._mode(sym) is MarginMode.ISOLATED:
            xi[sym] = math.fsum(p.margin for p in mine)
        else:
            xc[sym] = self._contrib(sym, self._mark(sym))

    def _iso_total(self) -> float:
        self._cross_cache()
        return math.fsum(self._xi.values())

    def perp_withdrawable(self) -> float:
        """What may leave the perp wallet: available margin without unrealised profit, >= 0."""
        profit = sum(max(self._upnl(p, self._mark(p.symbol)), 0.0) for p in self.positions.values()
                     if p.qty != 0.0 and self._mode(p.symbol) is MarginMode.CROSS)
        return max(min(self.perp_available() - profit, self.wallet), 0.0)

    def _mm(self, symbol: str, qty: float, price: float) -> float:
        return maintenance_margin(abs(qty) * price, self._brackets[symbol])


    # ---- positions view ---------------------------------------------------------------------
    def positions_view(self, symbols: Sequence[str] | None = None) -> list[Position]:
        """Open perp positions with uPnL and liquidation price at the current mark."""
        out = []
        cross_keys = [k for k, p in self.positions.items()
                      if p.qty != 0.0 and self._mode(p.symbol) is MarginMode.CROSS]
        for key, p in self.positions.items():
            if p.qty == 0.0 or (symbols is not None and p.symbol not in symbols):
                continue
            mark = self._mark(p.symbol)
            mode = self._mode(p.symbol)
            lp = self._liq_price(key, p, mode, {k: self._mark(k[0]) for k in cross_keys})
            out.append(Position(p.symbol, p.qty, p.entry, self._lev(p.symbol), mode, p.pside,
                                self._upnl(p, mark), lp, p.margin, mark))
        return out

    def _liq_price(self, key: tuple[str, PositionSide], p: _Pos, mode: MarginMode,
                   prices: Mapping[tuple[str, PositionSide], float]) -> float:
        br = self._brackets[p.symbol]
        if mode is MarginMode.ISOLATED:
            return liquidation_price(p.qty, p.entry, p.margin, br, margin_mode=MarginMode.ISOLATED)
        other_mm = other_upnl = 0.0
        for k, px in prices.items():
            if k == key:
                continue
            q = self.positions[k]
            other_mm += self._mm(q.symbol, q.qty, px)
            other_upnl += self._upnl(q, px)
        return liquidation_price(p.qty, p.entry, self._cross_wallet(), br, margin_mode=MarginMode.CROSS,
                                 other_maintenance_margin=other_mm, other_unrealized_pnl=other_upnl)

    def _cross_wallet(self) -> float:
        return self.wallet - self._iso_total()
