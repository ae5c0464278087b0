"""Best execution of the perp leg when a hedge starts: its venue chosen among the set's allowed venues.

A hedge of an ``xcarry`` set may say ``perp_venue="best"`` (or leave ``perp_venue`` out when the set
allows several perp venues, ``CrossCarryParams.allowed_perp_venues``). The runner then reads every
allowed venue's perp book and fee, walks each book for the hedge's planned entry (``notional / price``
base on the side of the entry, :func:`entry_side`: a perp SELL when the funding known at the choice is
positive or unknown, the carry being long spot / short perp; a perp BUY when it is negative and the set
allows a spot short, as :func:`hedge_core.engine.strategies.carry.decide` enters) and keeps the venue
with the best all-in quote flow (:func:`hedge_core.exchange.best_venue.choose_venue`: the most proceeds
for a sell, the least cost for a buy). The choice is made ONCE, at
start, before the engine's hedge exists: the engine binds each leg's instrument (and so the venue its
orders, fills, margin and funding are journaled under) when the hedge is created, and a choice at
start leaves the engine untouched. The hedge is then an ordinary two-venue hedge on the chosen venue:
``HedgeSpec.perp_venue`` holds it, so a restart recovers it there, and ``perp_venue_choice`` keeps
every venue's score (shown in the hedge's summary; journaled as a ``PERP_VENUE_CHOSEN`` transition row).

Where each figure comes from:

- book: the venue adapter's ``fetch_order_book`` (live: the venue's book through ccxt; paper: the
  paper venue's own execution model, :mod:`hedge_core.exchange.paper.book`, so the walked price is the
  fill it then gives);
- fee: the chosen venue's own perp taker fee (paper: its ``PaperConfig.perp_taker_fee``; live: the
  ccxt market's ``taker``), not the set's single ``perp_taker_fee``;
- price for the size: the first allowed venue whose ticker answers (the set's ``perp_venue`` first);
- funding rate for the side: a paper replay's last stored rate settled by the replay's start (the data
  venue's, :func:`start_funding_rate`); live, the first allowed venue whose ``fetch_funding_rate`` answers.

A venue whose adapter, markets, ticker or book cannot be read is ranked last with its error; when no
allowed venue can fill the size, :class:`~hedge_core.errors.InvalidInput` lists each one's depth and
nothing is written or sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.exchange.best_venue import VenueChoice, choose_venue, fetch_venue_books

if TYPE_CHECKING:
    from hedge_core.exchange.base import ExchangeAdapter
    from hedge_core.params.models import StrategyParamsBase
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.types import Bar

__all__ = ["ENTRY_SIDE", "TRIGGER", "allowed_perp_venues", "choice_reason", "choice_transition", "choose_perp_venue",
           "entry_side", "perp_taker_fee_of", "replay_start_rate", "start_funding_rate", "wants_best"]

#: The perp side of the carry's usual entry (long spot, short perp, positive funding).
ENTRY_SIDE = "sell"
#: ``trigger_name`` of the journal's transitions row that records the choice (state unchanged).
TRIGGER = "PERP_VENUE_CHOSEN"


def wants_best(spec: HedgeSpec, params: StrategyParamsBase) -> bool:
    """Does this hedge choose its perp venue at start? ``perp_venue="best"``, or no ``perp_venue`` with an
    xcarry set that allows more than one perp venue."""
    if spec.perp_venue == "best":
        return True
    return spec.perp_venue is None and len(getattr(params, "allowed_perp_venues", ()) or ()) > 1


def entry_side(params: StrategyParamsBase, rate: float | None) -> Literal["buy", "sell"]:
    """The perp side of the hedge's next entry, whose book the choice walks.

    ``rate``: the funding rate known at the choice (fraction per interval, + longs pay shorts; None or NaN
    unknown). The carry (:func:`hedge_core.engine.strategies.carry.decide`) enters long spot / short perp
    on a positive rate, short spot / long perp on a negative one only when ``allow_spot_short``; otherwise it
    stays out, and its next entry (if any) will be a sell. So: "buy" when ``rate < 0`` and the set allows a
    spot short, else "sell".
    """
    if rate is None or not math.isfinite(rate):
        return "sell"
    return "buy" if rate < 0 and bool(getattr(params, "allow_spot_short", False)) else "sell"


def start_funding_rate(store: Any, venue: str, symbol: str, at: pd.Timestamp) -> float | None:
    """The last funding rate of ``symbol`` on ``venue`` stored with a funding time at or before ``at`` (what a
    replay knows at its start; fraction per interval), None when the store has none."""
    try:
        f = store.read_funding(venue, symbol, end=at + pd.Timedelta(microseconds=1))
    except (LookupError, InvalidInput):
        return None
    return float(f["funding_rate"].iloc[-1]) if len(f) else None


def replay_start_rate(sup: Supervisor, spec: HedgeSpec) -> float | None:
    """A paper replay's funding rate known at its start (:func:`start_funding_rate` of the data venue); None for
    any other hedge (its venues are asked, :func:`choose_perp_venue`)."""
    if spec.mode != "paper" or spec.feed != "replay":
        return None
    venue, _first, start, _end = sup._replay_window(spec, None)
    return start_funding_rate(sup.store, venue, spec.perp_symbol, start)


async def _live_rate(adapters: Mapping[str, Any], symbol: str) -> float | None:
    """The first allowed venue's current funding rate that answers (None when none does)."""
    for ad in adapters.values():
        try:
            r = float((await ad.fetch_funding_rate(symbol)).rate)
        except Exception:  # noqa: BLE001 - no rate: the usual sell is walked
            continue
        if math.isfinite(r):
            return r
    return None


def allowed_perp_venues(params: StrategyParamsBase) -> tuple[str, ...]:
    """The set's allowed perp venues; InvalidInput on ``perp_venue`` when the set names none (not xcarry)."""
    allowed = tuple(getattr(params, "allowed_perp_venues", ()) or ())
    if not allowed:
        raise InvalidInput("perp_venue", "best", f"an xcarry set naming its perp venues (perp_venue, perp_venues) "
                                                 f"to choose among; this set is {params.strategy!s}: name the venue")
    return allowed


def perp_taker_fee_of(adapter: ExchangeAdapter, symbol: str) -> float:
    """The perp taker fee (fraction per fill) of the venue behind ``adapter``: a paper venue's
    ``PaperConfig.perp_taker_fee``, else the loaded ccxt market's ``taker``. InvalidInput naming the
    venue when it has neither."""
    cfg = getattr(getattr(adapter, "core", None), "config", None)
    if cfg is not None:
        return float(cfg.perp_taker_fee)
    markets = getattr(getattr(adapter, "exchange", None), "markets", None)
    m = markets.get(symbol) if isinstance(markets, Mapping) else None
    fee = m.get("taker") if isinstance(m, Mapping) else None
    if isinstance(fee, bool) or not isinstance(fee, (int, float)) or not math.isfinite(fee):
        raise InvalidInput(f"{getattr(adapter, 'venue', '?')}.taker_fee", fee,
                           f"the venue's {symbol} taker fee (its market's 'taker', a fraction)")
    return float(fee)


async def _probe(adapter: ExchangeAdapter, symbol: str) -> tuple[float, float]:
    """(taker fee, last price) of ``symbol`` at one venue."""
    await adapter.load_markets()
    fee = perp_taker_fee_of(adapter, symbol)
    t = await adapter.fetch_ticker(symbol)
    px = float(t.last or t.mid)
    if not (math.isfinite(px) and px > 0):
        raise InvalidInput(f"{getattr(adapter, 'venue', '?')}.price", px, f"a {symbol} price > 0")
    return fee, px


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def choice_record(choice: VenueChoice, symbol: str, price: float, fees: Mapping[str, float],
                  ts: pd.Timestamp | None = None, rate: float | None = None) -> dict[str, Any]:
    """The choice as plain JSON (stored as ``HedgeSpec.perp_venue_choice``): the venue, its taker fee, the
    walked side and size, the funding rate that set the side, and every allowed venue's score (NaN as None)."""
    return {"rule": "best", "venue": choice.venue, "taker_fee": float(fees[choice.venue]), "symbol": symbol,
            "side": choice.side, "amount": choice.amount, "price": float(price), "ts": None if ts is None else str(ts),
            "funding_rate": None if rate is None or not math.isfinite(rate) else float(rate),
            "ranking": [{"venue": s.venue, "avg_price": _num(s.avg_price), "fee": _num(s.fee),
                         "net_quote": _num(s.net_quote), "all_in_price": _num(s.all_in_price),
                         "taker_fee": _num(s.taker_fee), "depth": _num(s.depth), "reason": s.reason}
                        for s in choice.ranking]}


def choice_reason(record: Mapping[str, Any]) -> str:
    """One line an operator reads: ``perp venue bybit chosen by best execution (sell 0.25 BTC/USDT:USDT):
    bybit all-in 39,981.2 (avg 40,003.2, taker 0.055 %); okx: no order book (...)``."""
    parts = []
    for s in record.get("ranking", []):
        if s.get("reason"):
            parts.append(f"{s['venue']}: {s['reason']}")
        else:
            parts.append(f"{s['venue']} all-in {s['all_in_price']:,.6g} (avg {s['avg_price']:,.6g}, "
                         f"taker {s['taker_fee'] * 100:.4g} %)")
    refused = [r["venue"] for r in record.get("refused", []) or []]
    after = f", after the preflight refused {', '.join(refused)}" if refused else ""
    return (f"perp venue {record['venue']} chosen by best execution ({record['side']} {record['amount']:.6g} "
            f"{record['symbol']}{after}): " + "; ".join(parts))


def choice_transition(record: Mapping[str, Any], ts: pd.Timestamp, state: str) -> dict[str, Any]:
    """The journal's ``transitions`` row of the choice: state unchanged, trigger :data:`TRIGGER`."""
    return {"ts": ts, "from_state": state, "to_state": state, "trigger_name": TRIGGER, "reason": choice_reason(record)}


async def choose_perp_venue(spec: HedgeSpec, params: StrategyParamsBase, candidates: Mapping[str, ExchangeAdapter], *,
                            unread: Mapping[str, str] | None = None, ts: pd.Timestamp | None = None,
                            rate: float | None = None) -> tuple[HedgeSpec, VenueChoice]:
    """Choose the perp venue of ``spec`` among ``params``' allowed venues from the books ``candidates`` read now.

    Parameters
    ----------
    spec : HedgeSpec
        ``perp_venue`` "best" (or None, see :func:`wants_best`).
    params : StrategyParamsBase
        The hedge's set (xcarry): ``allowed_perp_venues`` and ``notional`` (quote, the planned entry).
    candidates : mapping venue -> adapter
        One adapter per allowed venue that could be built (its perp book, ticker, markets).
    unread : mapping venue -> str, optional
        Why an allowed venue has no adapter (ranked last with it).
    ts : timestamp, optional
        The hedge's clock at the choice (stored with the record).
    rate : float, optional
        The funding rate known at the choice (fraction per interval), which sets the walked side
        (:func:`entry_side`); None reads the first allowed venue's ``fetch_funding_rate`` (a sell when
        none answers).

    Returns
    -------
    (spec with ``perp_venue`` = the chosen venue and ``perp_venue_choice`` = :func:`choice_record`, the choice)

    Raises
    ------
    InvalidInput
        The set names no perp venues; no allowed venue answers; no allowed venue's book is deep enough
        for the size (each venue's depth listed).
    """
    allowed = allowed_perp_venues(params)
    if spec.venue in allowed:  # the set's validation keeps the spot venue out; a hedge on another spot venue is refused
        raise InvalidInput("venue", spec.venue, f"a spot venue other than the perp venues {list(allowed)}")
    symbol = spec.perp_symbol
    errors = {v: why for v, why in (unread or {}).items() if v in allowed}
    live = {v: candidates[v] for v in allowed if v in candidates and v not in errors}
    for v in allowed:
        if v not in live and v not in errors:
            errors[v] = "no adapter"
    probes = await asyncio.gather(*(_probe(ad, symbol) for ad in live.values()), return_exceptions=True)
    fees: dict[str, float] = {}
    price = math.nan
    for v, got in zip(list(live), probes):
        if isinstance(got, BaseException):
            errors[v] = f"{type(got).__name__}: {got}"
            live.pop(v)
            continue
        fees[v] = got[0]
        if math.isnan(price):
            price = got[1]  # the first allowed venue that answers (the set's perp_venue first)
    if not live:
        raise InvalidInput("perp_venue", "best", "at least one allowed perp venue answering: "
                           + "; ".join(f"{v}: {errors[v]}" for v in allowed))
    notional = float(params.notional)  # type: ignore[attr-defined]  # an xcarry set (allowed_perp_venues above)
    amount = notional / price
    if rate is None:
        rate = await _live_rate(live, symbol)
    books, unreadable = await fetch_venue_books(live, symbol, fees, amount=amount)
    errors.update(unreadable)
    choice = choose_venue(entry_side(params, rate), amount, books, allowed=allowed, unread=errors)
    record = choice_record(choice, symbol, price, fees, ts, rate)
    return spec.model_copy(update={"perp_venue": choice.venue, "perp_venue_choice": record}), choice


def _start_bars(sup: Supervisor, spec: HedgeSpec) -> list[Bar]:
    """A paper replay's bars at its start: for the spot and the perp symbol, the last stored bar closed by the
    window start, else (a window starting at the data's first bar) that first bar. The paper candidates'
    books are drawn at that price and volume."""
    from hedge_core.types import Bar, MarketKind

    venue, _first, start, _end = sup._replay_window(spec, None)
    tf = pd.Timedelta(spec.timeframe)
    out = []
    for sym, kind in ((spec.spot_symbol, MarketKind.SPOT), (spec.perp_symbol, MarketKind.PERP)):
        df = sup.store.read_bars(venue, sym, kind.value, spec.timeframe, start=start - pd.Timedelta(days=7),
                                 end=start + 2 * tf)
        closed = df[df.index + tf <= start]
        row = closed.iloc[-1] if len(closed) else (df.iloc[0] if len(df) else None)
        if row is None:
            raise InvalidInput("start", str(start), f"stored {sym} {kind.value} bars on {venue} around the start")
        ts = closed.index[-1] if len(closed) else df.index[0]
        out.append(Bar(pd.Timestamp(ts), venue, sym, kind, float(row["open"]), float(row["high"]), float(row["low"]),
                       float(row["close"]), float(row["volume"]), spec.timeframe))
    return out


async def perp_candidates(sup: Supervisor, spec: HedgeSpec,
                          allowed: tuple[str, ...]) -> tuple[dict[str, ExchangeAdapter], dict[str, str]]:
    """One adapter per allowed perp venue to read its book, and why a venue has none.

    Paper (stored bars: feed ``replay``): a throw-away paper venue per allowed venue with this hedge's
    settings for it (``paper_venues``), fed the bars at the replay's start; nothing is saved. Live and
    recommend: the perp side of what the runner's adapter factory builds for that venue (test hook), else a
    public ccxt adapter of the venue (a book, a ticker and the markets need no keys). The caller closes them.
    """
    adapters: dict[str, ExchangeAdapter] = {}
    unread: dict[str, str] = {}
    if spec.mode == "paper":
        if spec.feed != "replay":
            raise InvalidInput("perp_venue", "best", "a paper hedge on stored bars (feed 'replay') to choose its "
                                                     "perp venue; on live bars name the venue")
        bars = _start_bars(sup, spec)
        for v in allowed:
            ex = sup._paper(spec, v, {}, None)
            for b in bars:
                ex.core.apply(b)
            adapters[v] = ex
        return adapters, unread
    import importlib
    import os

    from hedge_core.runner.supervisor import ADAPTER_FACTORY_ENV

    hook = os.environ.get(ADAPTER_FACTORY_ENV)
    for v in allowed:
        try:
            if hook:
                mod, _, fn = hook.partition(":")
                ad = getattr(importlib.import_module(mod), fn)(spec.model_copy(update={"perp_venue": v}))
                legs = getattr(ad, "leg_adapters", None)
                if callable(legs):
                    spot, ad = legs()
                    await spot.close()
            else:
                from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter

                ad = CcxtLiveAdapter(v, None)
            adapters[v] = sup._register_secrets(ad)
        except Exception as exc:  # noqa: BLE001 - a venue that cannot be reached is ranked last, with why
            unread[v] = f"{type(exc).__name__}: {exc}"
    return adapters, unread


async def close_candidates(adapters: Mapping[str, ExchangeAdapter]) -> None:
    """Close the candidates' adapters (errors ignored: they only read)."""
    for ad in adapters.values():
        try:
            await ad.close()
        except Exception:  # noqa: BLE001
            pass
