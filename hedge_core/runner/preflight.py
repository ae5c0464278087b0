"""The preflight: both legs checked at the venue before the first order of a hedge is sent.

One async function, :func:`preflight`, reads the venue through the adapter protocol (markets,
tickers, balances, positions and the position mode) and applies the one size rule
(:func:`hedge_core.engine.sizing_bounds.size_bounds`). ``hedge carry --dry-run``, ``hedge start``,
the control API's ``POST /hedges`` (``dry_run: true`` checks without starting) and the panel's start
form all go through :func:`preflight_for_spec`, for paper too (the paper venue's instruments and
balances; prices of a replay from the store's first bar of the window).

What is checked, and what happens on failure (InvalidInput naming the field; nothing is written):

- both symbols are markets of the venue;
- prices: tickers of both legs no older than ``max_ticker_age_s`` (venue timestamp against the wall
  clock); a replay uses its first stored bar (the replay clock has no staleness);
- position mode: the hedge sends one-way orders (``positionSide=BOTH``). An account in hedge mode
  (Binance "dual side") answers ``-4061`` to them, so the mode is set to one-way when the hedge is
  started (``apply=True``) and the start is refused with the venue's reason when the venue refuses
  (``-4068``: positions open). A dry run only reads it (``fetch_position_mode`` where the adapter has
  it) and refuses when hedge mode cannot be switched (open positions in hedge mode);
- margin mode and leverage: set at start (``LeverageParams.margin_mode``, the leverage the engine's
  rule picks without a volatility estimate); a venue refusal refuses the start;
- size: the amount (``HedgeSpec.notional`` or the set's ``notional``) between the smallest
  hedgeable amount (lot, min qty, min notional of both legs at the current price) and the largest
  (free spot balance, free perp margin at ``LeverageParams.min_leverage`` plus fees, the hedge's
  position limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.sizing import choose_leverage
from hedge_core.engine.sizing_bounds import SizeBounds, SizeInputs, check_amount, size_bounds
from hedge_core.errors import ExchangeError, InvalidInput
from hedge_core.exchange.base import ExchangeAdapter
from hedge_core.exchange.costs import BINANCE_VIP0, entry_costs, of_adapter
from hedge_core.exchange.routed import leg_venue_of_binding
from hedge_core.params.models import CarryParams, CrossHedgeParams, GridParams, StrategyParamsBase, VolTierLoanParams
from hedge_core.types import Instrument, PositionMode, PositionSide

if TYPE_CHECKING:
    from hedge_core.runner.hedge import HedgeSpec
    from hedge_core.runner.supervisor import Supervisor

Params = CarryParams | CrossHedgeParams | VolTierLoanParams | GridParams

__all__ = ["DEFAULT_FEES", "PreflightReport", "discard_adapter", "preflight", "preflight_for_spec"]

#: Binance VIP0 taker fees (spot 0.1 %, USD-M 0.05 %; binance.com/en/fee/schedule), used when the
#: adapter does not say (the paper venue does: its PaperConfig fees).
DEFAULT_FEES = (BINANCE_VIP0.spot_taker_fee, BINANCE_VIP0.perp_taker_fee)


@dataclass(frozen=True)
class PreflightReport:
    """What the preflight saw and decided (read-only; ``lines()`` for a terminal or a page)."""

    spot: Instrument
    perp: Instrument
    spot_price: float
    perp_price: float
    price_source: str
    spot_free: float
    perp_free: float
    position_mode: str
    margin_mode: str
    leverage: float
    bounds: SizeBounds | None
    amount: float | None
    applied: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        out = [f"prices: spot {self.spot_price:,.2f}, perp {self.perp_price:,.2f} ({self.price_source})",
               f"balances: spot {self.spot_free:,.2f} USDT free, perp {self.perp_free:,.2f} USDT margin free",
               f"perp: position mode {self.position_mode}; margin {self.margin_mode}, leverage {self.leverage:g}x"
               + (" (set)" if self.applied else " (to be set at start)")]
        if self.bounds is not None:
            b = self.bounds
            out.append(f"size: {self.amount:,.2f} USDT within {b.min_amount:,.2f} .. {b.max_amount:,.2f} "
                       f"(smallest bound by {b.min_binding}; largest by {b.max_binding})")
        return out + list(self.notes)

    def as_dict(self) -> dict[str, Any]:
        b = self.bounds
        return {"spot_price": self.spot_price, "perp_price": self.perp_price, "price_source": self.price_source,
                "spot_free": self.spot_free, "perp_free": self.perp_free, "position_mode": self.position_mode,
                "margin_mode": self.margin_mode, "leverage": self.leverage, "amount": self.amount,
                "min_amount": b.min_amount if b else None, "max_amount": b.max_amount if b else None,
                "min_binding": b.min_binding if b else None, "max_binding": b.max_binding if b else None,
                "applied": self.applied, "lines": self.lines()}


def _fees(adapter: Any, params: StrategyParamsBase, spot_symbol: str | None = None,
          perp_symbol: str | None = None) -> tuple[float, float]:
    """Spot and perp taker fees sizing assumes: the venue's (:func:`hedge_core.exchange.costs.of_adapter`,
    each leg's own venue on two), never below the parameters' ``taker_fee`` override."""
    venue = of_adapter(adapter, spot_symbol, perp_symbol)
    floor = float(getattr(params, "taker_fee", None) or 0.0)
    return max(venue.spot_taker_fee, floor), max(venue.perp_taker_fee, floor)


async def _free(adapter: Any, account: str, currency: str) -> float:
    bal = (await adapter.fetch_balance(account)).get(currency)
    return float(bal.free) if bal is not None else 0.0


async def _ticker_prices(adapter: Any, spot: str, perp: str, max_age_s: float,
                         now: pd.Timestamp) -> tuple[float, float, str]:
    from hedge_core.runner.freshness import price_age_s

    out: list[float] = []
    ages: list[float] = []
    for sym in (spot, perp):
        t = await adapter.fetch_ticker(sym)
        px = float(t.last or t.mid)
        if not px > 0:
            raise InvalidInput("price", px, f"a price > 0 from the venue's ticker of {sym}")
        age = price_age_s(t.ts, now)
        if age > max_age_s:
            raise InvalidInput("max_ticker_age_s", max_age_s, f"a fresh price: the venue's {sym} ticker is "
                               f"{age:,.1f} s old (venue time {t.ts}); nothing is sized on a stale price")
        out.append(px)
        ages.append(age)
    return out[0], out[1], f"venue tickers, {max(ages):.1f} s old"


async def _position_mode(adapter: Any, perp: str, apply: bool) -> tuple[str, list[str]]:
    """Read (and at start, set) one-way mode; refuse with the venue's reason when it cannot be."""
    notes: list[str] = []
    read = getattr(adapter, "fetch_position_mode", None)
    if not getattr(adapter, "offers_position_mode", True):
        read = None  # the venue's mode is not readable through this adapter (Bybit): set at start
    mode: PositionMode | None = None
    if read is not None:
        mode = PositionMode(await read())
    positions = await adapter.fetch_positions(None)
    hedged = [p for p in positions if p.position_side is not PositionSide.BOTH]
    if mode is None and hedged:
        mode = PositionMode.HEDGE
    if apply and mode is not PositionMode.ONE_WAY:
        try:
            await adapter.set_position_mode(PositionMode.ONE_WAY)
        except ExchangeError as exc:
            raise InvalidInput("position_mode", str(mode or "unknown"), "one-way: the hedge sends one-way orders "
                               f"(Binance answers -4061 to them in hedge mode) and the venue refused the switch: "
                               f"{exc}. Close the positions (or switch to one-way in the venue's settings) "
                               "and start again") from None
        return f"one-way (set; was {mode or 'not readable'})", notes
    if mode is PositionMode.HEDGE:
        if hedged:
            raise InvalidInput("position_mode", "hedge", "one-way: the account is in hedge mode with open "
                               f"positions ({', '.join(p.symbol for p in hedged)}), so it cannot be switched; "
                               "one-way orders would be refused (Binance -4061). Close them or switch in the "
                               "venue's settings")
        return "hedge (switched to one-way at start)", notes
    mine = [p for p in positions if p.symbol == perp]
    if mine:
        notes.append(f"note: the account already holds {mine[0].qty:g} {perp}; this hedge's orders net with it")
    return "one-way" if mode is PositionMode.ONE_WAY else "not readable here (set to one-way at start)", notes


async def _settings(adapter: Any, perp: str, params: StrategyParamsBase, lev: float, apply: bool) -> None:
    if not apply:
        return
    try:
        await adapter.set_margin_mode(perp, params.leverage.margin_mode)
    except ExchangeError as exc:
        raise InvalidInput("margin_mode", str(params.leverage.margin_mode),
                           f"a margin mode the venue accepts for {perp}: it refused ({exc})") from None
    try:
        await adapter.set_leverage(perp, lev)
    except ExchangeError as exc:
        raise InvalidInput("leverage", lev, f"a leverage the venue accepts for {perp}: it refused ({exc})") from None


async def preflight(adapter: ExchangeAdapter, *, spot_symbol: str, perp_symbol: str, params: Params,
                    amount: float | None,
                    prices: tuple[float, float, str] | None = None, apply: bool = False,
                    max_ticker_age_s: float = 10.0, now: pd.Timestamp | None = None,
                    cap_min: float = 0.0, cap_max: float = math.inf, price_move: float = 0.01) -> PreflightReport:
    """Check both legs of a hedge at the venue before anything is sent.

    Parameters
    ----------
    adapter : ExchangeAdapter
        The hedge's venue adapter (paper, live or recommend).
    params : strategy params
        Leverage, guard limits, fees floor, hedge ratio (``rebalance.target_ratio``).
    amount : float or None
        Spot notional of the entry (quote); None skips the size check (a strategy without one).
    prices : (spot, perp, source) or None
        Prices to size at (a replay's first bar); None reads the venue's tickers (age-checked).
    apply : bool
        True at a real start: set position mode, margin mode and leverage. False (dry run,
        recommend mode): read only, send nothing.
    cap_min, cap_max : float
        The operator's own limits on the amount (quote).

    Raises
    ------
    InvalidInput
        Naming the field and what is allowed; nothing was written.
    """
    markets = await adapter.load_markets()
    try:
        spot, perp = markets[spot_symbol], markets[perp_symbol]
    except KeyError as exc:
        raise InvalidInput("symbol", str(exc).strip("'"), f"a market of {adapter.venue}") from None
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    ps, pp, source = prices if prices is not None else await _ticker_prices(
        adapter, spot_symbol, perp_symbol, max_ticker_age_s, now)
    spot_free = await _free(adapter, "spot", spot.quote)
    perp_free = await _free(adapter, "perp", perp.quote)
    mode, notes = await _position_mode(adapter, perp_symbol, apply)
    ratio = float(params.rebalance.target_ratio)
    lev_set = choose_leverage(math.nan, params.leverage, symbol=perp_symbol,
                              notional=max((amount or 0.0) * max(ratio, 0.0), 1.0), brackets=perp.brackets)
    lev_set = min(lev_set, perp.max_leverage)
    await _settings(adapter, perp_symbol, params, lev_set, apply)
    bounds = None
    if amount is not None:
        fs, fp = _fees(adapter, params, spot_symbol, perp_symbol)
        bounds = size_bounds(SizeInputs(
            spot=spot, perp=perp, spot_price=ps, perp_price=pp, ratio=ratio,
            leverage=float(params.leverage.min_leverage), spot_fee=fs, perp_fee=fp,
            slippage=entry_costs(params, of_adapter(adapter, spot_symbol, perp_symbol)).slippage_rate, spot_free=spot_free, perp_free=perp_free,
            max_position_notional=float(params.guards.max_position_notional),
            max_position_qty=float(params.guards.max_position_qty), price_move=price_move,
            cap_min=cap_min, cap_max=cap_max))
        try:
            check_amount(amount, bounds)
        except InvalidInput as exc:
            # legs on two venues: a leg short of funds is named with ITS venue (no money moves between them)
            venue = leg_venue_of_binding(bounds.max_binding, adapter) if amount > bounds.max_amount else None
            if venue is None:
                raise
            raise InvalidInput(exc.field, exc.value, f"{exc.allowed}; that leg's funds are on {venue} "
                               f"(no transfer between venues is made: fund {venue} yourself)",
                               where=f"venue {venue}") from None
    return PreflightReport(spot, perp, ps, pp, source, spot_free, perp_free, mode,
                           str(params.leverage.margin_mode), lev_set, bounds, amount, apply, tuple(notes))


def _replay_prices(sup: Supervisor, spec: HedgeSpec) -> tuple[float, float, str]:
    """First stored bar of the replay window (the price the replay starts at)."""
    venue = sup._data_venue(spec)
    start = pd.Timestamp(spec.start) if spec.start else None
    out = []
    for sym, kind in ((spec.spot_symbol, "spot"), (spec.perp_symbol, "perp")):
        end = None if start is None else start + pd.Timedelta(days=7)
        bars = sup.store.read_bars(venue, sym, kind, spec.timeframe, start=start, end=end)
        if not len(bars):
            raise InvalidInput("start", spec.start, f"a time with stored {kind} bars of {sym} on {venue}")
        out.append(float(bars["close"].iloc[0]))
    return out[0], out[1], f"first stored bar of the replay ({venue}, {bars.index[0]})"


async def preflight_for_spec(sup: Supervisor, spec: HedgeSpec, params: Params, adapter: ExchangeAdapter, *,
                             apply: bool,
                             cap_min: float = 0.0, cap_max: float = math.inf) -> PreflightReport:
    """:func:`preflight` of a :class:`~hedge_core.runner.hedge.HedgeSpec` started by ``sup`` (a
    Supervisor): the prices a replay starts at, a paper-on-live hedge's public tickers, or the venue's."""
    amount = spec.notional if spec.notional is not None else getattr(params, "notional", None)
    age = float(getattr(spec, "max_ticker_age_s", 10.0))
    prices = None
    if spec.mode == "paper" and spec.feed == "replay":
        prices = _replay_prices(sup, spec)
    elif spec.mode == "paper":  # paper on live bars: the venue's public tickers
        md = sup._market_data(spec)
        try:
            prices = await _ticker_prices(md, spec.spot_symbol, spec.perp_symbol, age, pd.Timestamp.now(tz="UTC"))
        finally:
            await md.close()
    if spec.perp_pair:  # two perp legs: each venue's futures wallet against its own leg (runner.preflight_pair)
        from hedge_core.runner.preflight_pair import preflight_pair

        return await preflight_pair(adapter, perp_symbol=spec.perp_symbol, params=params, amount=amount,
                                    prices=prices, apply=apply and spec.mode != "recommend", max_ticker_age_s=age,
                                    cap_min=cap_min, cap_max=cap_max)
    return await preflight(adapter, spot_symbol=spec.spot_symbol, perp_symbol=spec.perp_symbol, params=params,
                           amount=amount, prices=prices, apply=apply and spec.mode != "recommend",
                           max_ticker_age_s=age, cap_min=cap_min, cap_max=cap_max)


async def discard_adapter(adapter: ExchangeAdapter) -> None:
    """Close the adapter of a hedge that is not started (refused, or a dry run); a paper venue is
    dropped unsaved (its ``close`` would write a state file for a hedge that never existed)."""
    if hasattr(adapter, "core"):
        return
    await adapter.close()
