"""A hedge of two PERP legs on two venues: what the engine does differently when the FIRST leg is a perp.

The engine's legs keep their names: ``spot`` is the FIRST leg (opened first, hedged by the second, unwound
when the hedge is refused) and ``perp`` the SECOND. When the first leg's instrument is a perp
(``HedgeContext.first_leg_is_perp``, e.g. long BTC/USDT:USDT on Bybit, short BTC/USDT:USDT on OKX), that
leg is a margined position on its own venue too:

- **Funding** settles on it from its own venue's events: ``FundingSettled(leg="spot")``
  (:func:`on_first_leg_funding`), ``-qty x mark x rate`` (:func:`hedge_core.money.funding_payment`)
  unless the venue's booked amount is given. Each leg's funding stays on its own leg.
- **Margin and leverage**: the leverage and margin mode chosen at entry are set on BOTH legs' venues
  (:func:`first_leg_settings`); the liquidation-distance guards watch both legs
  (:func:`hedge_core.engine.guards.market_guards`), each at its own venue's mark.
- **Marks**: the first leg is marked at its venue's mark (``MarketUpdate.spot_mark``; NaN: its price).
- **Orders**: a closing order on the first leg is reduce-only like the perp's; no borrow interest
  (a perp short is not a borrowed spot short).

The two-leg rules (open the first leg, hedge with the second, unwind the first when the hedge is
refused, reconcile) are :mod:`hedge_core.engine.step`'s, unchanged. A spot first leg never reaches
this module: its behaviour is unchanged to the bit.

- **Unfavourable funding** (``exit.funding_unfavourable_intervals``) counts settlement times at which the
  PAIR's net funding is negative (:func:`on_pair_funding`), not the second leg's alone.

- **Funding cost guard** prices what the PAIR pays net (``guards.pair_pay_apr``: each leg at its own
  venue's rate and interval; the first leg's from ``MarketUpdate.spot_funding_rate``).

- **Deferred soft exits** (``exit.defer_within_s_of_funding``, :func:`pair_defers_exit`): a profit-target or
  max-holding exit waits when what BOTH legs settle within the window is received net: each leg whose venue's
  next settlement (``MarketUpdate.next_funding_ts`` for the second, ``spot_next_funding_ts`` for the first)
  falls in ``(0, window]`` counts ``-qty x mark x rate`` at its own venue's rate.
"""

from __future__ import annotations

import math

import pandas as pd

from hedge_core.engine.actions import Action, SetLeverage, SetMarginMode
from hedge_core.engine.context import HedgeContext, evolve, seconds_between
from hedge_core.engine.events import FundingSettled, MarketUpdate
from hedge_core.engine.ledger import Leg, apply_funding, funding_amount
from hedge_core.engine.roll_step import book_funding, is_dated, perpetual_qty
from hedge_core.errors import InvalidInput
from hedge_core.params.models import ExitParams
from hedge_core.types import MarginMode, MarketKind

__all__ = ["first_leg_settings", "is_perp", "on_first_leg_funding", "on_pair_funding", "on_second_leg_funding",
           "pair_defers_exit"]


def is_perp(leg: Leg) -> bool:
    """True for a margined perp leg (the second leg always; the first when it is a perp)."""
    return leg.name == "perp" or leg.kind is MarketKind.PERP


def on_pair_funding(ctx: HedgeContext, ev: FundingSettled) -> HedgeContext:
    """A settlement on either leg of a hedge whose first leg is a perp (``ev.leg``: ``"spot"`` the first,
    ``"perp"`` the second), booked on that leg (:func:`on_first_leg_funding` / :func:`on_second_leg_funding`).

    ``unfavourable_funding`` (the ``exit.funding_unfavourable_intervals`` rule) counts settlement times at
    which the PAIR's net funding (both legs' amounts at that ``ts``, whichever venue reports first) is
    negative: one leg paying what the other receives more of is not unfavourable.
    """
    before = ctx
    if ev.leg == "spot":
        ctx = on_first_leg_funding(ctx, ev)
        amount = ctx.spot.funding - before.spot.funding
    elif ctx.roll_leg is not None or is_dated(ctx.perp.symbol):  # the second leg rolled (engine.roll_step)
        ctx, counted = book_funding(ctx, ev)
        if counted is None:  # nothing on the perpetual: nothing counts (a late venue record is booked, not counted)
            return ctx
        amount = counted
    else:
        ctx = on_second_leg_funding(ctx, ev)
        amount = ctx.perp.funding - before.perp.funding
    if ctx is before:
        return ctx
    t = ev.ts.value
    last = ctx.pair_funding
    if last is not None and last[0] == t:
        net, base = last[1] + amount, last[2]
    else:
        net, base = amount, ctx.unfavourable_funding
    return evolve(ctx, pair_funding=(t, net, base), unfavourable_funding=base + 1 if net < 0 else 0)


def pair_defers_exit(ctx: HedgeContext, ts: pd.Timestamp, reason: str, market: MarketUpdate, p: ExitParams) -> bool:
    """True when a soft exit (profit target, max holding time) of a perp PAIR should wait for the funding
    settling within ``p.defer_within_s_of_funding`` seconds of ``ts`` because the pair RECEIVES it net.

    Each leg whose venue's next settlement lies in ``(0, window]`` counts its expected payment
    ``-qty x mark x rate`` (quote; + received): the second leg at ``market.expected_funding_rate`` and
    ``market.next_funding_ts``, the first at ``market.spot_funding_rate`` and ``market.spot_next_funding_ts``
    (its venue's last settled rate, at ``market.first_mark``). A leg whose next settlement or rate is unknown
    counts nothing. The exit waits when the sum is > 0: a leg about to pay more than the other receives in the
    window does not hold the pair. Stops, trailing, basis and funding exits are never deferred.
    """
    from hedge_core.engine.exits import SOFT_EXITS

    window = p.defer_within_s_of_funding
    if window is None or not reason.startswith(SOFT_EXITS):
        return False
    net = 0.0
    # the second leg counts only what it holds on the perpetual (a calendar roll's dated future pays none)
    for qty, nxt, rate, mark in ((ctx.spot.qty, market.spot_next_funding_ts, market.spot_funding_rate, market.first_mark),
                                 (perpetual_qty(ctx), market.next_funding_ts, market.expected_funding_rate,
                                  market.mark_or_perp)):
        if nxt is None or math.isnan(rate) or math.isnan(mark) or not 0 < seconds_between(nxt, ts) <= window:
            continue
        net += funding_amount(qty, mark, rate)
    return net > 0


def on_second_leg_funding(ctx: HedgeContext, ev: FundingSettled) -> HedgeContext:
    """Book the second venue's settlement on the second (perp) leg: the rule of ``step._on_funding``
    (the venue's booked amount wins; NaN: ``-qty x mark x rate``)."""
    leg = ctx.perp
    if math.isnan(ev.amount) and leg.qty == 0.0:
        return ctx
    amount = ev.amount if not math.isnan(ev.amount) else funding_amount(leg.qty, ev.mark, ev.rate)
    if amount == 0.0 and leg.qty == 0.0:
        return ctx
    return evolve(ctx, perp=apply_funding(leg, amount))


def on_first_leg_funding(ctx: HedgeContext, ev: FundingSettled) -> HedgeContext:
    """Book a funding settlement of the FIRST leg's venue on the first leg (+ received / - paid, quote).

    The venue's booked ``ev.amount`` wins; NaN: ``-qty x ev.mark x ev.rate`` from the book. A flat
    leg with no booked amount changes nothing.

    Raises
    ------
    InvalidInput
        When the first leg is not a perp (a spot holding settles no funding).
    """
    leg = ctx.spot
    if leg.kind is not MarketKind.PERP:
        raise InvalidInput("FundingSettled.leg", ev.leg, f"'perp': the first leg {leg.symbol} on {leg.venue} is "
                                                         f"{leg.kind}, which settles no funding")
    if math.isnan(ev.amount) and leg.qty == 0.0:
        return ctx
    amount = ev.amount if not math.isnan(ev.amount) else funding_amount(leg.qty, ev.mark, ev.rate)
    if amount == 0.0 and leg.qty == 0.0:
        return ctx
    return evolve(ctx, spot=apply_funding(leg, amount))


def first_leg_settings(ctx: HedgeContext, mode: MarginMode | None, leverage: float) -> tuple[Action, ...]:
    """The margin mode (``None``: leave it) and leverage for the first leg's venue when that leg is a
    perp; ``()`` for a spot first leg. The second leg's settings are :mod:`hedge_core.engine.step`'s."""
    leg = ctx.spot
    if leg.kind is not MarketKind.PERP:
        return ()
    out: list[Action] = []
    if mode is not None:
        out.append(SetMarginMode(leg.venue, leg.symbol, mode))
    out.append(SetLeverage(leg.venue, leg.symbol, leverage))
    return tuple(out)
