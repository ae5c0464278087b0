"""Synchronous paper-exchange simulator: the one simulator behind paper trading AND backtests.

:class:`PaperCore` is a deterministic state machine driven by two kinds of input:

- market events through :meth:`PaperCore.apply` (:class:`~hedge_core.types.Bar` of kind spot,
  perp or mark, and :class:`~hedge_core.types.FundingEvent`), in the order a
  :class:`~hedge_core.exchange.feeds.Feed` emits them (bars ending at t -> orders at t ->
  funding at t);
- account calls (:meth:`create_order`, :meth:`cancel_order`, :meth:`transfer`, ``set_*``), applied
  at the current simulated instant :attr:`PaperCore.now` (the known-time of the last event).

No I/O, no wall clock, no hidden randomness: the only randomness is an optional slippage noise
drawn from a seeded :class:`random.Random` whose state is part of :meth:`state_dict`.
The async :class:`~hedge_core.exchange.paper.PaperExchange` is a thin shell over this core.

Model (units: base qty, quote price/notional, fees and slippage in quote)
---------------------------------------------------------------------
Reference price
    A market order fills against the close of the LAST KNOWN bar of its instrument (spot bars
    for spot symbols, perp bars for perps). The mark price of a perp is the close of its last
    known mark bar (the perp close until a mark bar has been seen).
Slippage (per fill)
    ``slip_bps = slippage_bps + impact_k_bps * sqrt(fill_qty / bar_volume)`` (+ optional
    ``N(0, slippage_noise_bps)`` noise, total floored at 0), ``bar_volume`` = base volume of that
    reference bar (impact 0 when the volume is unknown/0);
    ``price = ref * (1 + side * slip_bps / 1e4)``; ``Fill.slippage = qty * |price - ref| >= 0``.
    Maker fills (resting limits) have no slippage. Fill prices are not rounded to the tick
    (they stand for an average over a walked book).
Fees
    ``fee = qty * price * rate``, rate = maker or taker of the market kind, always charged in the
    quote currency (USDT). A spot buy spends ``qty*price + fee`` quote; a sell receives
    ``qty*price - fee``.
Participation cap (optional, ``participation=x``)
    All orders of one instrument together fill at most ``x * volume`` base per bar (``x`` of the
    bar's volume). A market order's remainder keeps working: it fills at the close (+ slippage)
    of each following bar, within that bar's budget, until done or cancelled.
Limit orders
    A buy limit at or above the reference price (sell: at or below) is marketable: it fills at
    once as taker at ``min(slipped price, limit)`` (sell: max). Otherwise it rests and fills
    as maker AT its limit price on a later bar (a bar whose open time is at or after the order
    time) that trades THROUGH it: ``low < limit`` for a buy, ``high > limit`` for a sell
    (touching is not enough).
Perps (USDT-margined, linear, contract size 1)
    One-way or hedge position mode; leverage and cross/isolated per symbol. Isolated margin =
    entry notional / leverage (plus funding). Available margin = wallet - isolated margins +
    cross uPnL - cross initial margin (|qty|*mark/leverage) - open-order margin.
Funding
    At each FundingEvent the payment of each position is computed by
    :func:`hedge_core.money.funding_payment` (positive rate: longs pay shorts), credited to the perp wallet (isolated: also to the position's margin) and
    recorded as :class:`~hedge_core.types.FundingPayment`.
Money formulas
    Every one of the above (slippage, fill price, fee, position average and realised PnL,
    isolated margin, funding, unrealised PnL, order cost) is a call into :mod:`hedge_core.money`,
    the one home the engine ledger and the fast path call too.
Liquidation (on every mark bar, or perp bar while no mark series is known)
    Maintenance margin and liquidation price come from :mod:`hedge_core.analytics.risk` (the
    Binance bracket tables; no second copy here). The check uses the bar's ADVERSE EXTREME:
    isolated: ``margin + uPnL(low for a long / high for a short) < MM`` liquidates that position;
    cross: ``wallet - isolated margins + cross uPnL < cross MM`` evaluated with this symbol's
    mark at the bar low and at the bar high (other symbols at their last mark) liquidates ALL
    cross positions. The fill is at the risk-module liquidation price (at the bar open if the
    mark gapped through it), with fee ``liquidation_fee_rate * notional``. Isolated losses are
    capped at the position margin and a cross wallet is floored at 0; the excess is recorded as
    ``insurance_cover`` in :attr:`PaperCore.liquidations`. Liquidation fills carry client order
    ids ``liq-<n>``; open orders on a liquidated symbol are cancelled.
Rejections (Binance-like, raise, change nothing)
    ``InvalidOrder``: ``Filter failure: LOT_SIZE`` / ``PRICE_FILTER`` / ``MIN_NOTIONAL``,
    ``-2022 ReduceOnly Order is rejected``, ``-4061`` position side mismatch, ``-2027`` notional
    above the leverage bracket, ``-4116 Duplicate clientOrderId``. ``InsufficientFunds``:
    ``-2010`` spot balance, ``-2019 Margin is insufficient``.
Client order ids
    Never reused: a create_order with an id that any earlier accepted order carried (open or
    final) raises :class:`~hedge_core.errors.DuplicateOrder` (an InvalidOrder) and changes
    nothing; fetch it with ``fetch_order(client_order_id=...)``. Rejected requests do not
    consume their id (like Binance, where a rejected order never existed).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from hedge_core import money
from hedge_core.analytics.risk import (
    Bracket,
    brackets_for,
)
from hedge_core.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    OperationalError,
    OrderNotFound,
)

# Split by concern into hedge_core/exchange/paper/; the names below are re-exported so
# ``from hedge_core.exchange.paper.core import ...`` keeps working everywhere.
from hedge_core.exchange.paper.config import (  # noqa: F401
    _EPS,
    _PSIDES,
    _TF_CACHE,
    ACCOUNTS,
    SETTLE,
    PaperConfig,
    _check_rate,
    _tf,
    default_instruments,
)
from hedge_core.exchange.paper.checks import _OrderChecksMixin
from hedge_core.exchange.paper.delivery import _DeliveryMixin
from hedge_core.exchange.paper.quarterly import quarterly_bars
from hedge_core.exchange.paper.liquidation import _LiquidationMixin
from hedge_core.exchange.paper.margin import _MarginMixin
from hedge_core.exchange.paper.records import _Ord, _Pos, _pts, _ts  # noqa: F401
from hedge_core.exchange.paper.state import _StateMixin
from hedge_core.exchange.order_status import next_venue_status
from hedge_core.types import (
    Balance,
    Bar,
    Fill,
    FundingEvent,
    FundingPayment,
    FundingRate,
    Instrument,
    Liquidity,
    MarginMode,
    MarketKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    Ticker,
)

__all__ = ["PaperConfig", "PaperCore", "default_instruments", "ACCOUNTS"]


class PaperCore(_MarginMixin, _LiquidationMixin, _DeliveryMixin, _StateMixin, _OrderChecksMixin):
    """The paper venue's state and rules. See the module docstring for the model.

    Parameters
    ----------
    config : PaperConfig, optional
    balances : mapping, optional
        Initial wallets: ``{"spot": {"USDT": 10_000, "BTC": 0.1}, "perp": {"USDT": 5_000}}``.
        The perp wallet holds USDT only.
    start : timestamp-like, optional
        Initial simulated instant (UTC); default: the first event's known time.
    """

    def __init__(self, config: PaperConfig | None = None, *,
                 balances: Mapping[str, Mapping[str, float]] | None = None,
                 start: object | None = None) -> None:
        self.config = config or PaperConfig()
        cfg = self.config
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in cfg.instruments}
        self._brackets: dict[str, tuple[Bracket, ...]] = {}
        for i in cfg.instruments:
            if i.kind is MarketKind.PERP:
                self._brackets[i.symbol] = (tuple(cfg.brackets[i.symbol]) if i.symbol in cfg.brackets
                                            else i.brackets or brackets_for(i.symbol))
        self._fees = {MarketKind.SPOT: (cfg.spot_maker_fee, cfg.spot_taker_fee),
                      MarketKind.PERP: (cfg.perp_maker_fee, cfg.perp_taker_fee)}
        self.now: pd.Timestamp | None = None if start is None else pd.Timestamp(start).tz_convert("UTC")
        self.spot: dict[str, float] = {}
        self.spot_locked: dict[str, float] = {}
        self.wallet: float = 0.0  # perp wallet balance, USDT (realised: deposits, PnL, fees, funding)
        self.position_mode: PositionMode = cfg.position_mode
        self.leverage: dict[str, float] = {}
        self.margin_mode: dict[str, MarginMode] = {}
        self.positions: dict[tuple[str, PositionSide], _Pos] = {}
        self.orders: dict[str, _Ord] = {}
        self._by_cid: dict[str, str] = {}
        self._open: list[str] = []  # open order ids in creation order
        self.fills: list[Fill] = []
        self.funding_payments: list[FundingPayment] = []
        self.funding_history: list[FundingRate] = []
        self.liquidations: list[dict[str, Any]] = []
        self.transfers: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []  # dated futures delivered at expiry (paper.delivery)
        self.delivered: list[str] = []  # symbols of the quarterlies delivered (held or not)
        self.delivery_samples: dict[str, list[float]] = {}  # index (spot) closes in a delivery window
        self.last_bar: dict[tuple[str, MarketKind], Bar] = {}  # (symbol, kind) -> last known bar
        self._budget: dict[str, float] = {}  # participation budget left in the current bar, base
        self._seq = 0  # order ids
        self._tseq = 0  # trade ids
        self._lseq = 0  # liquidations
        self._rng = random.Random(cfg.seed)
        # derived cache (never persisted, rebuilt from state): per cross symbol (uPnL, MM, IM) at its
        # mark, and the total isolated margin. None = stale.
        self._xc: dict[str, tuple[float, float, float]] | None = None
        self._xi: dict[str, float] = {}  # isolated margin per symbol (valid when _xc is not None)
        self._last_event: Bar | FundingEvent | None = None
        self._known_memo: tuple[pd.Timestamp | None, str, pd.Timestamp | None] = (None, "", None)
        self._restored_key: tuple[pd.Timestamp, int, int, str] | None = None
        for account, bals in (balances or {}).items():
            for cur, amt in bals.items():
                self.deposit(account, cur, amt)

    # =========================================================================================
    # helpers
    # =========================================================================================
    def _instrument(self, symbol: str, method: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise InvalidOrder(f"Invalid symbol {symbol!r}; known: {sorted(self.instruments)}",
                               venue=self.config.venue, method=method)
        return inst

    def _perp(self, symbol: str, method: str) -> Instrument:
        inst = self._instrument(symbol, method)
        if inst.kind is not MarketKind.PERP:
            raise InvalidOrder(f"{symbol} is not a perpetual", venue=self.config.venue, method=method)
        return inst

    def _lev(self, symbol: str) -> float:
        lev = self.leverage.get(symbol)
        if lev is None:
            lev = min(self.config.default_leverage, self.instruments[symbol].max_leverage)
        return lev

    def _mode(self, symbol: str) -> MarginMode:
        return self.margin_mode.get(symbol, self.config.default_margin_mode)

    def _err(self, cls: type, msg: str, method: str = "create_order") -> Exception:
        return cls(msg, venue=self.config.venue, method=method)

    def ref_price(self, symbol: str) -> float | None:
        """Last known close of the instrument (spot bars for spot, perp bars for perps)."""
        inst = self.instruments.get(symbol)
        if inst is None:
            return None
        bar = self.last_bar.get((symbol, inst.kind))
        return None if bar is None else bar.close

    def mark_price(self, symbol: str) -> float | None:
        """Last known mark close of a perp (perp close until a mark bar has been seen)."""
        bar = self.last_bar.get((symbol, MarketKind.MARK)) or self.last_bar.get((symbol, MarketKind.PERP))
        return None if bar is None else bar.close

    def _mark(self, symbol: str) -> float:
        m = self.mark_price(symbol)
        if m is None:
            raise self._err(OperationalError, f"no mark price known for {symbol} yet", "mark")
        return m

    def _new_id(self) -> str:
        self._seq += 1
        return f"P{self._seq}"

    def _new_tid(self) -> str:
        self._tseq += 1
        return f"T{self._tseq}"

    # =========================================================================================
    # account funding
    # =========================================================================================
    def deposit(self, account: str, currency: str, amount: float) -> None:
        """Add ``amount`` (> 0) of ``currency`` to a wallet (initial capital; no fee)."""
        self._check_account("account", account)
        if not (math.isfinite(amount) and amount > 0):
            raise InvalidInput("amount", amount, "a finite amount > 0")
        if account == "perp":
            if currency != SETTLE:
                raise InvalidInput("currency", currency, f"'{SETTLE}' (the perp wallet holds {SETTLE} only)")
            self.wallet += amount
        else:
            self.spot[currency] = self.spot.get(currency, 0.0) + amount

    @staticmethod
    def _check_account(name: str, account: str) -> None:
        if account not in ACCOUNTS:
            raise InvalidInput(name, account, f"one of {ACCOUNTS}")

    def transfer(self, currency: str, amount: float, from_account: str, to_account: str) -> dict[str, Any]:
        """Move ``amount`` of ``currency`` between the ``'spot'`` and ``'perp'`` wallets.

        The perp wallet holds USDT only; at most the perp *available* balance (not counting
        unrealised profit) can leave it. Raises InsufficientFunds, changes nothing on error.
        """
        self._check_account("from_account", from_account)
        self._check_account("to_account", to_account)
        if from_account == to_account:
            raise InvalidInput("to_account", to_account, f"different from from_account={from_account!r}")
        if not (isinstance(amount, (int, float)) and math.isfinite(amount) and amount > 0):
            raise InvalidInput("amount", amount, "a finite amount > 0")
        if SETTLE != currency and "perp" in (from_account, to_account):
            raise InvalidInput("currency", currency, f"'{SETTLE}' (the perp wallet holds {SETTLE} only)")
        if from_account == "spot":
            free = self.spot.get(currency, 0.0) - self.spot_locked.get(currency, 0.0)
            if amount > free + 1e-9:
                raise self._err(InsufficientFunds, f"-2010 Account has insufficient balance: {currency} "
                                f"free {free:.8f} < {amount:.8f}", "transfer")
            self.spot[currency] = self.spot.get(currency, 0.0) - amount
            self.wallet += amount
        else:
            free = self.perp_withdrawable()
            if amount > free + 1e-9:
                raise self._err(InsufficientFunds, f"-2019 Margin is insufficient: perp withdrawable "
                                f"{free:.8f} < {amount:.8f}", "transfer")
            self.wallet -= amount
            self.spot[currency] = self.spot.get(currency, 0.0) + amount
        rec = {"ts": _ts(self.now), "currency": currency, "amount": float(amount),
               "from": from_account, "to": to_account}
        self.transfers.append(rec)
        return rec

    # =========================================================================================
    # market events
    # =========================================================================================
    def apply(self, event: Bar | FundingEvent) -> None:
        """Consume one market event (in feed order). Fills resting orders, checks liquidations,
        settles funding. Events must come in non-decreasing known-time order."""
        if isinstance(event, Bar):
            self._apply_bar(event)
        elif isinstance(event, FundingEvent):
            self._apply_funding(event)
        else:
            raise InvalidInput("event", type(event).__name__, "a Bar or a FundingEvent")
        self._last_event = event
        if self.config.quarterlies:  # a quarterly whose expiry this event reached is delivered (paper.delivery)
            self._deliver_due(strictly_after=False)

    @property
    def last_event_key(self) -> tuple[pd.Timestamp, int, int, str] | None:
        """Feed order key (:func:`hedge_core.exchange.feeds.event_order_key`) of the last applied
        event: a resumed replay passes it as ``after=`` so nothing is applied twice or skipped."""
        if self._last_event is None:
            return self._restored_key
        from hedge_core.exchange.feeds import event_order_key

        return event_order_key(self._last_event)

    def apply_many(self, events: Iterable[Bar | FundingEvent]) -> None:
        for ev in events:
            self.apply(ev)

    def _advance(self, t: pd.Timestamp) -> None:
        if self.now is not None and t < self.now:
            raise InvalidInput("event time", str(t), f"events in time order (simulator is at {self.now})")
        self.now = t
        if self.config.quarterlies:  # an event past an expiry: deliver first, at the expiry (paper.delivery)
            self._deliver_due(strictly_after=True)

    def _apply_bar(self, bar: Bar) -> None:
        ts0, tf0, known = self._known_memo
        if bar.timeframe != tf0 or bar.ts != ts0:  # the legs of one instant share it: add once
            known = bar.ts + _tf(bar.timeframe)
            self._known_memo = (bar.ts, bar.timeframe, known)
        self._advance(known)
        sym, kind = bar.symbol, bar.kind
        inst = self.instruments.get(sym)
        if inst is None or (kind is not MarketKind.MARK and kind is not inst.kind):
            # data for a market this venue does not trade (or of another kind): remember only
            self.last_bar[(sym, kind)] = bar
            return
        if kind is MarketKind.MARK:
            self._check_liquidation(sym, bar)
            self.last_bar[(sym, kind)] = bar
            self._mark_moved(sym, bar.close)
            return
        self.last_bar[(sym, kind)] = bar
        p = self.config.participation
        self._budget[sym] = math.inf if (p is None or bar.volume <= 0) else p * bar.volume
        if self._open:
            self._work_orders(sym, bar)
        if kind is MarketKind.PERP and (sym, MarketKind.MARK) not in self.last_bar:
            self._check_liquidation(sym, bar)
            self._mark_moved(sym, bar.close)
        if self.config.quarterlies and kind is MarketKind.SPOT:  # simulated dated futures (paper.quarterly)
            self._delivery_sample(sym, known, bar.close)
            for qb in quarterly_bars(self.config.quarterlies, bar, _tf(bar.timeframe)):
                self._apply_bar(qb)

    def _mark_moved(self, sym: str, mark: float) -> None:
        xc = self._xc
        if xc is not None and sym in xc:
            xc[sym] = self._contrib(sym, mark)

    def _work_orders(self, sym: str, bar: Bar) -> None:
        for oid in list(self._open):
            o = self.orders[oid]
            if o.symbol != sym or o.status is not OrderStatus.OPEN:
                continue
            if o.type is OrderType.MARKET:
                self._fill_taker(o, bar.close, bar.volume)
            elif o.ts <= bar.ts:
                through = bar.low < o.price if o.side is Side.BUY else bar.high > o.price
                if through:
                    self._fill_maker(o)

    def _apply_funding(self, ev: FundingEvent) -> None:
        self._advance(ev.ts)
        mark = self.mark_price(ev.symbol)
        self.funding_history.append(FundingRate(ev.symbol, ev.ts, ev.rate, ev.interval_hours, mark))
        if mark is None:
            return
        for p in self.positions.values():
            if p.symbol != ev.symbol or p.qty == 0.0:
                continue
            amount = money.funding_payment(p.qty, mark, ev.rate)
            self.wallet += amount
            if self._mode(p.symbol) is MarginMode.ISOLATED:
                p.margin += amount
                self._refresh(p.symbol)
            self.funding_payments.append(FundingPayment(ev.symbol, ev.ts, amount, ev.rate, p.qty, mark))

    # =========================================================================================
    # orders
    # =========================================================================================
    def create_order(self, req: OrderRequest) -> Order:
        """Validate and accept an order at :attr:`now`; market orders fill at once (up to the
        participation budget). Raises InvalidOrder / InsufficientFunds / DuplicateOrder."""
        venue = self.config.venue
        if req.client_order_id in self._by_cid:
            raise DuplicateOrder(f"-4116 Duplicate clientOrderId {req.client_order_id!r} "
                                 f"(order {self._by_cid[req.client_order_id]}); fetch it instead",
                                 venue=venue, method="create_order")
        if not req.client_order_id or len(req.client_order_id) > 36:
            raise self._err(InvalidOrder, f"clientOrderId {req.client_order_id!r} must be 1..36 characters")
        if req.client_order_id.startswith("liq-"):
            raise self._err(InvalidOrder, f"clientOrderId {req.client_order_id!r}: the 'liq-' prefix is "
                            "reserved for liquidation orders")
        inst = self._instrument(req.symbol, "create_order")
        for q in self.config.quarterlies:  # a simulated quarterly is not traded at or after its expiry
            if q.symbol == req.symbol and self.now is not None and self.now >= q.expiry:
                raise self._err(InvalidOrder, f"{req.symbol} expired at {q.expiry} (delivered; not tradable)")
        side = Side(req.side)
        otype = OrderType(req.type)
        qty = float(req.qty)
        perp = inst.kind is MarketKind.PERP
        ref = self.ref_price(req.symbol)
        if ref is None:
            raise self._err(OperationalError, f"no market price for {req.symbol} yet (no bar seen)")
        # ---- filters ----
        if not (math.isfinite(qty) and qty > 0):
            raise self._err(InvalidOrder, f"Filter failure: LOT_SIZE (qty={req.qty!r} must be > 0)")
        steps = qty / inst.lot_size
        if abs(steps - round(steps)) > 1e-6 or qty < inst.min_qty - _EPS:
            raise self._err(InvalidOrder, f"Filter failure: LOT_SIZE (qty={qty!r}; lot {inst.lot_size}, "
                            f"min qty {inst.min_qty})")
        price = req.price
        if otype is OrderType.LIMIT:
            if price is None or not (math.isfinite(price) and price > 0):
                raise self._err(InvalidOrder, f"Filter failure: PRICE_FILTER (limit price={price!r} must be > 0)")
            ticks = price / inst.tick_size
            if abs(ticks - round(ticks)) > 1e-6:
                raise self._err(InvalidOrder, f"Filter failure: PRICE_FILTER (price={price!r}; tick {inst.tick_size})")
        else:
            price = None
        notional = qty * (price if price is not None else ref)
        pside = PositionSide(req.position_side)
        reduce_only = bool(req.reduce_only)
        if perp:
            pside, reduce_only = self._check_perp_side(side, pside, reduce_only, req.symbol)
        elif reduce_only or pside is not PositionSide.BOTH:
            raise self._err(InvalidOrder, "reduceOnly/positionSide are not allowed on spot orders")
        if notional < inst.min_notional - _EPS and not (perp and reduce_only):
            raise self._err(InvalidOrder, f"Filter failure: MIN_NOTIONAL (notional {notional:.8f} < "
                            f"{inst.min_notional} {inst.quote})")
        marketable = otype is OrderType.MARKET or (price >= ref if side is Side.BUY else price <= ref)
        # ---- funds ----
        if perp:
            self._check_perp_funds(inst, side, qty, price if price is not None else ref, pside, reduce_only)
        else:
            self._check_spot_funds(inst, side, qty, price, ref, marketable)
        # ---- accept ----
        o = _Ord(self._new_id(), req.client_order_id, req.symbol, side, otype, qty, price, reduce_only,
                 pside, self.now, perp)
        self.orders[o.id] = o
        self._by_cid[o.cid] = o.id
        self._open.append(o.id)
        if marketable:
            bar = self.last_bar[(req.symbol, inst.kind)]
            self._fill_taker(o, bar.close, bar.volume)
        if o.status is OrderStatus.OPEN and not perp and otype is OrderType.LIMIT:
            self._lock(o, inst)
        return o.view()

    def _close_order(self, o: _Ord, status: OrderStatus) -> None:
        o.status = next_venue_status(o.status, status)  # only an open order closes (engine.order_states)
        self._unlock(o)
        try:
            self._open.remove(o.id)
        except ValueError:
            pass

    # ---- fills ---------------------------------------------------------------------------
    def _slipped(self, ref: float, side: Side, qty: float, volume: float, *, noise: bool = True) -> float:
        return money.fill_price(ref, side.sign, self._slip_bps(qty, volume, noise))

    def _slip_bps(self, qty: float, volume: float, noise: bool = True) -> float:
        cfg = self.config
        bps = money.slippage_bps(cfg.slippage_bps, cfg.impact_k_bps, qty, volume)
        if noise and cfg.slippage_noise_bps > 0:
            bps = max(bps + self._rng.gauss(0.0, cfg.slippage_noise_bps), 0.0)
        return bps

    def _fillable(self, o: _Ord) -> float:
        """Quantity this order may fill now: remaining, capped by the bar budget and reduce-only."""
        inst = self.instruments[o.symbol]
        q = min(o.qty - o.filled, self._budget.get(o.symbol, math.inf))
        if o.reduce_only:
            closable = self._closable(o)
            if closable <= 0.0:
                self._close_order(o, OrderStatus.EXPIRED)
                return 0.0
            q = min(q, closable)
        if q < o.qty - o.filled:
            q = inst.round_qty(q)
        return q if q > 0 else 0.0

    def _closable(self, o: _Ord) -> float:
        """Base quantity a reduce-only order may still close (0 when flat or same direction)."""
        p = self.positions.get((o.symbol, o.pside))
        pq = 0.0 if p is None else p.qty
        return abs(pq) if pq != 0.0 and ((pq > 0) != (o.side is Side.BUY)) else 0.0

    def _fill_taker(self, o: _Ord, ref: float, volume: float) -> None:
        q = self._fillable(o)
        if q <= 0.0:
            return
        px = money.fill_price(ref, o.side.sign, self._slip_bps(q, volume))
        if o.price is not None:
            px = min(px, o.price) if o.side is Side.BUY else max(px, o.price)
        # >= 0: a taker buy never fills below ref (slippage >= 0, a marketable limit is >= ref)
        self._execute(o, q, px, money.slippage_cost(o.side.sign, q, px, ref), Liquidity.TAKER)

    def _fill_maker(self, o: _Ord) -> None:
        q = self._fillable(o)
        if q <= 0.0:
            return
        self._execute(o, q, o.price, 0.0, Liquidity.MAKER)

    def _execute(self, o: _Ord, q: float, px: float, slippage: float, liq: Liquidity) -> None:
        inst = self.instruments[o.symbol]
        maker, taker = self._fees[inst.kind]
        fee = money.fee(q, px, maker if liq is Liquidity.MAKER else taker)
        if o.perp:
            opening = self._opening_qty(o.symbol, o.side, q, o.pside, o.reduce_only)
            if opening > 0 and o.type is OrderType.MARKET and o.filled > 0:
                # a working market remainder: re-check margin at this fill
                lev = self._lev(o.symbol)
                if money.isolated_margin(opening, px, lev) + fee > self.perp_available() + 1e-9:
                    self._close_order(o, OrderStatus.EXPIRED)
                    return
            self._perp_fill(o.symbol, o.pside, o.side, q, px)
            self.wallet -= fee
        else:
            if o.locked > 0:  # release this slice's lock before spending
                part = money.buy_cost_with_fee(q, o.price, maker) if o.side is Side.BUY else q
                cur = inst.quote if o.side is Side.BUY else inst.base
                part = min(part, o.locked)
                o.locked -= part
                self.spot_locked[cur] = max(self.spot_locked.get(cur, 0.0) - part, 0.0)
            dquote = money.spot_quote_delta(o.side.sign, q, px, fee)
            if o.side is Side.BUY:
                free = self.spot.get(inst.quote, 0.0) - self.spot_locked.get(inst.quote, 0.0)
                if -dquote > free + 1e-9:
                    self._close_order(o, OrderStatus.EXPIRED)
                    return
                self.spot[inst.quote] = self.spot.get(inst.quote, 0.0) + dquote
                self.spot[inst.base] = self.spot.get(inst.base, 0.0) + q
            else:
                free = self.spot.get(inst.base, 0.0) - self.spot_locked.get(inst.base, 0.0)
                if q > free + 1e-9:
                    self._close_order(o, OrderStatus.EXPIRED)
                    return
                self.spot[inst.base] = self.spot.get(inst.base, 0.0) - q
                self.spot[inst.quote] = self.spot.get(inst.quote, 0.0) + dquote
        if self._budget.get(o.symbol, math.inf) != math.inf:
            self._budget[o.symbol] -= q
        o.filled += q
        o.cost += q * px
        o.fee += fee
        self.fills.append(Fill(self._new_tid(), o.id, o.cid, o.symbol, o.side, q, px, fee, self.now,
                               SETTLE, liq, slippage))
        if o.qty - o.filled <= inst.lot_size * 1e-6:
            self._close_order(o, OrderStatus.CLOSED)
        elif o.reduce_only and self._closable(o) <= 0.0:
            # the position is flat: Binance cancels what is left of a reduce-only order
            self._close_order(o, OrderStatus.EXPIRED)

    def _perp_fill(self, symbol: str, pside: PositionSide, side: Side, q: float, px: float) -> None:
        self._perp_fill_raw(symbol, pside, side, q, px)
        self._refresh(symbol)

    def _perp_fill_raw(self, symbol: str, pside: PositionSide, side: Side, q: float, px: float) -> None:
        key = (symbol, pside)
        p = self.positions.get(key)
        if p is None:
            p = self.positions[key] = _Pos(symbol, pside)
        q0 = p.qty
        p.qty, p.entry, realized, closed = money.fill_position(q0, p.entry, side.sign, q, px)
        self.wallet += realized
        if self._mode(symbol) is MarginMode.ISOLATED:
            p.margin = money.isolated_margin_after_fill(p.margin, q0, p.qty, q, closed, px, self._lev(symbol))
        elif p.qty == 0.0:
            p.margin = 0.0

    # ---- cancel / query --------------------------------------------------------------------
    def _find(self, symbol: str, order_id: str | None, client_order_id: str | None, method: str) -> _Ord:
        if order_id is None and client_order_id is None:
            raise InvalidInput("order_id", None, "an order_id or a client_order_id")
        oid = order_id if order_id is not None else self._by_cid.get(client_order_id or "")
        o = self.orders.get(oid or "")
        if o is None or o.symbol != symbol or (client_order_id is not None and o.cid != client_order_id):
            raise self._err(OrderNotFound, f"-2013 Order does not exist: symbol={symbol} order_id={order_id} "
                            f"client_order_id={client_order_id}", method)
        return o

    def cancel_order(self, symbol: str, *, order_id: str | None = None,
                     client_order_id: str | None = None) -> Order:
        """Cancel an open order (keeps its partial fill). A final order raises OrderNotFound
        ("-2011 Unknown order sent"), like Binance."""
        o = self._find(symbol, order_id, client_order_id, "cancel_order")
        if o.status is not OrderStatus.OPEN:
            raise self._err(OrderNotFound, f"-2011 Unknown order sent: {o.id} is {o.status.value}", "cancel_order")
        self._close_order(o, OrderStatus.CANCELED)
        return o.view()

    def fetch_order(self, symbol: str, *, order_id: str | None = None,
                    client_order_id: str | None = None) -> Order:
        return self._find(symbol, order_id, client_order_id, "fetch_order").view()

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [self.orders[i].view() for i in self._open if symbol is None or self.orders[i].symbol == symbol]

    def trades(self, symbol: str | None = None, since: pd.Timestamp | None = None) -> list[Fill]:
        return [f for f in self.fills
                if (symbol is None or f.symbol == symbol) and (since is None or f.ts >= since)]

    # =========================================================================================
    # settings
    # =========================================================================================
    def set_leverage(self, symbol: str, leverage: float) -> None:
        """Leverage of a perp symbol, 1 <= leverage <= the instrument's max (Binance -4028).
        Applies to new margin; isolated margin already posted is unchanged."""
        inst = self._perp(symbol, "set_leverage")
        if not (isinstance(leverage, (int, float)) and math.isfinite(leverage)
                and 1.0 <= leverage <= inst.max_leverage):
            raise self._err(InvalidOrder, f"-4028 Leverage {leverage!r} is not valid; allowed 1..{inst.max_leverage:g}",
                            "set_leverage")
        open_notional = sum(abs(p.qty) * self._mark(symbol) for p in self.positions.values()
                            if p.symbol == symbol and p.qty != 0.0)
        if open_notional > self._max_notional(symbol, float(leverage)):
            raise self._err(InvalidOrder, f"-2027 Exceeded the maximum allowable position at leverage {leverage:g}",
                            "set_leverage")
        self.leverage[symbol] = float(leverage)
        self._refresh(symbol)

    def set_margin_mode(self, symbol: str, mode: MarginMode | str) -> None:
        """Cross or isolated per symbol; refused with an open position or order (Binance -4048)."""
        self._perp(symbol, "set_margin_mode")
        mode = MarginMode(mode)
        if mode is self._mode(symbol):
            return
        busy = any(p.symbol == symbol and p.qty != 0.0 for p in self.positions.values()) or \
            any(self.orders[i].symbol == symbol for i in self._open)
        if busy:
            raise self._err(OperationalError, f"-4048 Margin type cannot be changed if there exists position "
                            f"or open orders on {symbol}", "set_margin_mode")
        self.margin_mode[symbol] = mode
        self._refresh(symbol)

    def set_position_mode(self, mode: PositionMode | str) -> None:
        """One-way or hedge; refused with any open perp position or order (Binance -4068)."""
        mode = PositionMode(mode)
        if mode is self.position_mode:
            return
        if any(p.qty != 0.0 for p in self.positions.values()) or any(self.orders[i].perp for i in self._open):
            raise self._err(OperationalError, "-4068 Position side cannot be changed if there exists "
                            "position or open orders", "set_position_mode")
        self.position_mode = mode

    # =========================================================================================
    # read views
    # =========================================================================================
    def balance(self, account: str = "spot") -> dict[str, Balance]:
        """Spot: per currency, ``used`` = locked by open limit orders. Perp: USDT with
        ``total`` = wallet balance, ``free`` = available margin (>= 0), ``used`` = the rest."""
        self._check_account("account", account)
        if account == "spot":
            return {c: Balance(c, v - self.spot_locked.get(c, 0.0), self.spot_locked.get(c, 0.0))
                    for c, v in sorted(self.spot.items())}
        free = min(max(self.perp_available(), 0.0), max(self.wallet, 0.0))
        return {SETTLE: Balance(SETTLE, free, self.wallet - free)}

    def ticker(self, symbol: str) -> Ticker:
        inst = self._instrument(symbol, "fetch_ticker")
        bar = self.last_bar.get((symbol, inst.kind))
        if bar is None:
            raise self._err(OperationalError, f"no market data for {symbol} yet", "fetch_ticker")
        half = self.config.slippage_bps / 1e4
        mark = self.mark_price(symbol) if inst.kind is MarketKind.PERP else None
        return Ticker(symbol, self.now, bar.close * (1 - half), bar.close * (1 + half), bar.close, mark)

    def order_book(self, symbol: str, limit: int | None = None, amount: float | None = None) -> dict[str, list[list[float]]]:
        """This venue's book of ``symbol`` drawn from its own execution model
        (:func:`hedge_core.exchange.paper.book.model_book`: walking it for ``amount`` gives the average
        price a market order of ``amount`` fills at now, without slippage noise). Depth: what is left of
        the participation budget of the current bar, else unlimited (shown as ``max(V, 2 x amount)``)."""
        from hedge_core.exchange.paper.book import model_book

        inst = self._instrument(symbol, "fetch_order_book")
        bar = self.last_bar.get((symbol, inst.kind))
        if bar is None:
            raise self._err(OperationalError, f"no market data for {symbol} yet", "fetch_order_book")
        cfg = self.config
        volume = max(float(bar.volume), 0.0)
        budget = self._budget.get(symbol, math.inf)
        if cfg.participation is not None and budget != math.inf:
            depth = budget
        else:
            depth = max(volume, 2.0 * float(amount or 0.0)) or 1.0
        if depth <= 0.0:  # the participation budget of this bar is spent: nothing fills before the next bar
            return {"bids": [], "asks": []}
        return model_book(bar.close, volume, cfg.slippage_bps, cfg.impact_k_bps, depth=depth, limit=limit,
                          amount=amount)

    def equity(self) -> float:
        """Account value in USDT: spot balances at their last spot close (USDT at 1) + perp wallet
        + unrealised PnL. Currencies without a known price count 0."""
        tot = self.wallet
        for p in self.positions.values():
            if p.qty != 0.0:
                tot += self._upnl(p, self._mark(p.symbol))
        for cur, amt in self.spot.items():
            if cur == SETTLE:
                tot += amt
            elif amt != 0.0:
                px = self.ref_price(f"{cur}/{SETTLE}")
                tot += amt * (px or 0.0)
        return tot
