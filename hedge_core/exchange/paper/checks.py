"""Pre-trade checks of :class:`~hedge_core.exchange.paper.core.PaperCore`: the perp position side and
reduce-only rules, the part of an order that opens exposure, the leverage bracket's notional cap, perp
initial margin and spot funds, and the spot locks of resting limit orders. Each refusal carries the
Binance error code it imitates. Formulas are calls into :mod:`hedge_core.money`.
"""

from __future__ import annotations

from hedge_core import money
from hedge_core.errors import InsufficientFunds, InvalidOrder
from hedge_core.exchange.paper.records import _Ord
from hedge_core.types import Instrument, MarketKind, PositionMode, PositionSide, Side


class _OrderChecksMixin:
    """Order checks and spot locks of PaperCore (uses its positions, wallets, fees, brackets and last bars)."""

    def _check_perp_side(self, side: Side, pside: PositionSide, reduce_only: bool,
                         symbol: str) -> tuple[PositionSide, bool]:
        if self.position_mode is PositionMode.ONE_WAY:
            if pside is not PositionSide.BOTH:
                raise self._err(InvalidOrder, f"-4061 Order's position side {pside.value} does not match "
                                "user's setting (one-way mode takes position_side=both)")
            if reduce_only:
                p = self.positions.get((symbol, PositionSide.BOTH))
                if p is None or p.qty == 0.0 or (p.qty > 0) == (side is Side.BUY):
                    raise self._err(InvalidOrder, "-2022 ReduceOnly Order is rejected (it would not "
                                    "reduce the position)")
            return pside, reduce_only
        if pside is PositionSide.BOTH:
            raise self._err(InvalidOrder, "-4061 Order's position side does not match user's setting "
                            "(hedge mode takes position_side=long or short)")
        closing = (pside is PositionSide.LONG) != (side is Side.BUY)
        if reduce_only and not closing:
            raise self._err(InvalidOrder, "-2022 ReduceOnly Order is rejected (it would open)")
        if closing:
            p = self.positions.get((symbol, pside))
            if p is None or p.qty == 0.0:
                raise self._err(InvalidOrder, f"-2022 ReduceOnly Order is rejected (no {pside.value} position)")
        return pside, closing  # in hedge mode a closing order is reduce-only by nature

    def _opening_qty(self, symbol: str, side: Side, qty: float, pside: PositionSide, reduce_only: bool) -> float:
        """Part of an order that opens/increases exposure (base)."""
        if reduce_only:
            return 0.0
        p = self.positions.get((symbol, pside))
        if self.position_mode is PositionMode.HEDGE or p is None or p.qty == 0.0:
            return qty
        if (p.qty > 0) == (side is Side.BUY):
            return qty
        return max(qty - abs(p.qty), 0.0)

    def _check_perp_funds(self, inst: Instrument, side: Side, qty: float, price: float,
                          pside: PositionSide, reduce_only: bool) -> None:
        opening = self._opening_qty(inst.symbol, side, qty, pside, reduce_only)
        if opening <= 0.0:
            return
        lev = self._lev(inst.symbol)
        p = self.positions.get((inst.symbol, pside))
        cur = abs(p.qty) if p is not None and ((p.qty > 0) == (side is Side.BUY)) else 0.0
        new_notional = (cur + opening) * price
        cap = self._max_notional(inst.symbol, lev)
        if new_notional > cap:
            raise self._err(InvalidOrder, f"-2027 Exceeded the maximum allowable position at current "
                            f"leverage: notional {new_notional:.2f} > {cap:.0f} at {lev:g}x")
        need = (money.isolated_margin(opening, price, lev)
                + money.fee(opening, price, self._fees[MarketKind.PERP][1]))
        avail = self.perp_available()
        if need > avail + 1e-9:
            raise self._err(InsufficientFunds, f"-2019 Margin is insufficient: need {need:.8f} USDT "
                            f"initial margin+fee, available {avail:.8f}")

    def _max_notional(self, symbol: str, lev: float) -> float:
        br = self._brackets[symbol]
        return money.max_notional(lev, [b.notional_cap for b in br], [b.max_leverage for b in br])

    def _check_spot_funds(self, inst: Instrument, side: Side, qty: float, price: float | None,
                          ref: float, marketable: bool) -> float:
        maker, taker = self._fees[MarketKind.SPOT]
        if side is Side.BUY:
            if marketable:
                est = self._slipped(ref, Side.BUY, qty, self.last_bar[(inst.symbol, inst.kind)].volume, noise=False)
                if price is not None:
                    est = min(est, price)
                need = money.buy_cost_with_fee(qty, est, taker)
            else:
                need = money.buy_cost_with_fee(qty, price, maker)
            cur = inst.quote
        else:
            need, cur = qty, inst.base
        free = self.spot.get(cur, 0.0) - self.spot_locked.get(cur, 0.0)
        if need > free + 1e-9:
            raise self._err(InsufficientFunds, f"-2010 Account has insufficient balance for requested "
                            f"action: need {need:.8f} {cur}, free {free:.8f}")
        return need

    def _lock(self, o: _Ord, inst: Instrument) -> None:
        rem = o.qty - o.filled
        if o.side is Side.BUY:
            amt, cur = money.buy_cost_with_fee(rem, o.price, self._fees[MarketKind.SPOT][0]), inst.quote
        else:
            amt, cur = rem, inst.base
        o.locked = amt
        self.spot_locked[cur] = self.spot_locked.get(cur, 0.0) + amt

    def _unlock(self, o: _Ord) -> None:
        if o.locked <= 0.0:
            return
        inst = self.instruments[o.symbol]
        cur = inst.quote if o.side is Side.BUY else inst.base
        left = self.spot_locked.get(cur, 0.0) - o.locked
        self.spot_locked[cur] = left if left > 1e-12 else 0.0
        o.locked = 0.0
