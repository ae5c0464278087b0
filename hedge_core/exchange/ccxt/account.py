"""Account settings and the exchange-side dead man's switch of :class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`
(leverage, margin mode, position mode, maintenance brackets, the venues' cancel-all timers:
Binance's ``countdownCancelAll``, OKX's ``cancel-all-after``).

A mixin: it uses the adapter's call plumbing (``_call``, ``_ensure_markets``, ``_instrument``, ``_perp``,
``_is_no_change``, ``_ex``, ``config``, ``venue``); every vendor error is translated there, once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from hedge_core import errors as he
from hedge_core.types import MarginMode, MarketKind, PositionMode, is_perp_symbol

__all__ = ["AccountSettingsMixin"]


class AccountSettingsMixin:
    """Leverage, margin and position mode, brackets and the cancel-all countdown (see the module docstring)."""

    # ------------------------------------------------------------------ account settings
    async def _idempotent(self, method: str, call: Callable[[], Awaitable[Any]]) -> None:
        async def once() -> None:
            try:
                await call()
            except Exception as exc:
                if self._is_no_change(exc):
                    return  # nothing to change is success
                raise
        await self._call(method, once)

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        """Set the perp leverage (integer on Binance); same value again is a success."""
        await self._ensure_markets()
        inst = self._instrument(symbol)
        if inst.kind is not MarketKind.PERP:
            raise he.InvalidInput("symbol", symbol, "a perp symbol such as 'BTC/USDT:USDT'")
        if not (1 <= leverage <= inst.max_leverage) or leverage != int(leverage):
            raise he.InvalidInput("leverage", leverage, f"an integer in [1, {inst.max_leverage:g}]")
        await self._idempotent("set_leverage", lambda: self._ex.set_leverage(
            int(leverage), symbol, {**self._market_params(symbol), **self._mode_params(symbol)}))

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        await self._ensure_markets()
        inst = self._instrument(symbol)
        if inst.kind is not MarketKind.PERP:
            raise he.InvalidInput("symbol", symbol, "a perp symbol such as 'BTC/USDT:USDT'")
        mode = MarginMode(mode)
        if self.config.margin_mode_per_order:  # OKX: each order's tdMode; nothing to send now
            self._order_margin_mode[symbol] = mode.value
            return
        await self._idempotent("set_margin_mode", lambda: self._ex.set_margin_mode(
            mode.value, symbol, self._market_params(symbol)))
        if self.config.account_margin_mode:
            self._margin_mode_cache = mode.value  # the whole account changed

    async def set_position_mode(self, mode: PositionMode) -> None:
        mode = PositionMode(mode)
        await self._ensure_markets()
        # the USDT-margined perps' mode: without "type" Bybit's ccxt would send category=spot
        await self._idempotent("set_position_mode", lambda: self._ex.set_position_mode(
            mode is PositionMode.HEDGE, None, {"type": "swap", "subType": "linear"}))

    async def fetch_position_mode(self) -> PositionMode:
        """The USDT-margined perps' position mode (OPTIONAL protocol method, read by the preflight):
        ccxt ``fetch_position_mode`` (Binance ``GET /fapi/v1/positionSide/dual``, "Get Current Position
        Mode": ``dualSidePosition`` true = hedge mode)."""
        await self._ensure_markets()
        r = await self._call("fetch_position_mode", lambda: self._ex.fetch_position_mode(
            None, {"type": "swap", "subType": "linear"}))
        return PositionMode.HEDGE if r.get("hedged") else PositionMode.ONE_WAY

    @property
    def offers_position_mode(self) -> bool:
        """Whether :meth:`fetch_position_mode` can read this venue's mode (ccxt has no
        ``fetchPositionMode`` for Bybit: the preflight then sets one-way at start without reading it)."""
        return bool(self._ex.has.get("fetchPositionMode"))

    @property
    def offers_brackets(self) -> bool:
        """Whether :meth:`fetch_brackets` reads this venue's table (Binance USD-M's signed bracket call;
        Bybit's risk-limit and OKX's position tiers through :meth:`fetch_tiers`)."""
        return self.config.brackets or self.offers_tiers

    async def fetch_brackets(self, symbol: str) -> tuple[Any, ...]:
        """The venue's maintenance-margin brackets of a perp (OPTIONAL protocol method), as
        :class:`hedge_core.analytics.risk.Bracket` rows (ccxt ``fetch_leverage_tiers``; on Binance the
        signed ``GET /fapi/v1/leverageBracket``, which may differ per account). InvalidInput when the
        venue's table is not a valid bracket table."""
        from hedge_core.analytics.risk import brackets_from_tiers

        if not self.config.brackets:
            if not self.offers_tiers:
                raise he.InvalidInput("venue", self.venue, "a venue whose tiers this adapter maps (binance, bybit, okx)")
            table = (await self.fetch_tiers([symbol])).get(symbol)
            if not table:
                raise he.InvalidInput("symbol", symbol, "a perp the venue returned tiers for")
            return table
        await self._ensure_markets()
        self._perp(symbol)
        tiers = await self._call("fetch_brackets", lambda: self._ex.fetch_leverage_tiers([symbol]))
        if symbol not in tiers:
            raise he.InvalidInput("symbol", symbol, f"a symbol the venue returned tiers for: {sorted(tiers)}")
        return brackets_from_tiers(tiers[symbol])

    #: venues whose maintenance tiers map to the Bracket model: Binance ``GET /fapi/v1/leverageBracket``
    #: (signed) and Bybit ``GET /v5/market/risk-limit`` (public) answer in notional (quote) tiers; OKX's
    #: ``GET /api/v5/public/position-tiers`` (public) answers in contracts (``minSz``/``maxSz``), converted with
    #: the contract size and the mark price at read time (:func:`hedge_core.analytics.risk.okx_tiers_to_notional`).
    TIER_VENUES = ("binance", "bybit", "okx")

    @property
    def offers_tiers(self) -> bool:
        """Whether :meth:`fetch_tiers` can read this venue's maintenance tiers with these credentials."""
        if self.venue not in self.TIER_VENUES:
            return False
        if not (self._ex.has.get("fetchLeverageTiers") or (self.config.tiers_in_contracts
                                                           and self._ex.has.get("fetchMarketLeverageTiers"))):
            return False
        return self.venue != "binance" or self.credentials is not None  # Binance's table is a signed call

    async def fetch_tiers(self, symbols: list[str]) -> dict[str, tuple[Any, ...]]:
        """Maintenance tiers of several perps as bracket tables (``{symbol: (Bracket, ...)}``; ccxt
        ``fetch_leverage_tiers``, Binance's and Bybit's tiers mapped to the one Bracket model by
        :func:`hedge_core.analytics.risk.brackets_from_tiers`). A symbol the venue gave no tiers for is
        absent; InvalidInput when a table is malformed (naming the symbol)."""
        from hedge_core.analytics.risk import brackets_from_tiers

        if not self.offers_tiers:
            raise he.InvalidInput("venue", self.venue, f"one of {list(self.TIER_VENUES)} (Binance with API keys)")
        await self._ensure_markets()
        for s in symbols:
            self._perp(s)
        if self.config.tiers_in_contracts:
            return await self._contract_tiers(symbols)
        tiers = await self._call("fetch_tiers", lambda: self._ex.fetch_leverage_tiers(list(symbols)))
        out: dict[str, tuple[Any, ...]] = {}
        for s in symbols:
            if tiers.get(s):
                try:
                    out[s] = brackets_from_tiers(tiers[s])
                except he.InvalidInput as exc:
                    raise he.InvalidInput(f"{s} {exc.field}", exc.value, exc.allowed) from None
        return out

    async def _contract_tiers(self, symbols: list[str]) -> dict[str, tuple[Any, ...]]:
        """OKX: per symbol, the position tiers (contracts, ccxt ``fetch_market_leverage_tiers``) and the mark
        price (``GET /api/v5/public/position-tiers``, ``GET /api/v5/public/mark-price``), mapped to notional
        brackets at that mark, each charging the whole position its tier's rate (OKX's model: every ``cum`` 0; see
        :func:`~hedge_core.analytics.risk.okx_tiers_to_notional`)."""
        from hedge_core.analytics.risk import brackets_from_tiers, okx_tiers_to_notional

        out: dict[str, tuple[Any, ...]] = {}
        for s in symbols:
            rows = await self._call("fetch_tiers", lambda s=s: self._ex.fetch_market_leverage_tiers(s))
            if not rows:
                continue
            mark = await self._call("fetch_tiers", lambda s=s: self._ex.fetch_mark_price(s))
            price = float(mark.get("markPrice") or mark.get("last") or 0.0)
            try:
                out[s] = brackets_from_tiers(okx_tiers_to_notional(rows, self._instrument(s).contract_size, price),
                                             whole_position=True)
            except he.InvalidInput as exc:
                raise he.InvalidInput(f"{s} {exc.field}", exc.value, exc.allowed) from None
        return out

    async def dated_futures(self, base: str, quote: str = "USDT") -> list[tuple[str, Any]]:
        """The venue's dated linear futures of ``base``/``quote`` that this adapter trades (venues with
        ``dated_futures``: OKX FUTURES), as ``(symbol, expiry)`` pairs sorted by expiry (tz-aware UTC
        ``pd.Timestamp``; ccxt's market ``expiry``, OKX ``expTime``). Empty when the venue lists none.
        For :mod:`hedge_core.engine.calendar_roll`."""
        import pandas as pd

        await self._ensure_markets()
        out = []
        for sym, inst in self._instruments.items():
            m = self._ex.markets.get(sym) or {}
            if m.get("future") and m.get("expiry") and inst.base == base and inst.quote == quote:
                out.append((sym, pd.Timestamp(int(m["expiry"]), unit="ms", tz="UTC")))
        return sorted(out, key=lambda r: r[1])

    # ------------------------------------------------------------------ exchange-side dead man's switch
    def cancel_all_scope(self, symbol: str) -> str:
        """What the venue's cancel-all timer covers when armed for ``symbol``: ``"symbol"`` (Binance USD-M:
        that perp symbol's orders), ``"account"`` (OKX: every pending order of the account, spot and
        derivatives), or ``""`` (nothing is armed for this symbol: spot on Binance, Bybit, paper)."""
        scope = self.config.cancel_all_after
        if scope == "symbol" and not is_perp_symbol(symbol):
            return ""
        return scope

    async def arm_cancel_all_after(self, symbol: str, seconds: float) -> bool:
        """(Re-)arm the venue's cancel-all countdown (OPTIONAL protocol method).

        - Binance USD-M futures: ``POST /fapi/v1/countdownCancelAll`` with the market id and
          ``countdownTime = seconds * 1000`` (milliseconds) ("Auto-Cancel All Open Orders (TRADE)").
          Binance cancels every open order of that symbol when the countdown runs out without being
          re-armed; each call restarts it, and ``seconds == 0`` disarms it.
        - OKX: ``POST /api/v5/trade/cancel-all-after`` with ``timeOut`` in whole seconds ("Cancel All
          After": "Range of value can be 0, [10, 120]"; 0 disables it). ONE timer for the whole account:
          it cancels every pending order, spot and derivatives, whatever ``symbol`` is passed (any symbol
          the venue lists). A positive countdown is rounded up to whole seconds and held in [10, 120]:
          below 10 s OKX refuses it, so 10 s is sent; above 120 s, 120 s is sent (the timer fires sooner
          than asked, never later). Rate limit 1 request per second: the supervisor arms an account
          timer once per beat, not once per hedge.

        Both cancel orders only: positions are left as they are.

        Parameters
        ----------
        symbol:
            ccxt unified symbol. On Binance a spot symbol (``BTC/USDT``) returns False without any
            request (Binance spot has no such timer).
        seconds:
            Countdown, seconds, finite and >= 0 (0 disarms). On Binance a positive value below 1 ms is
            sent as 1 ms, never rounded down to 0 (which would disarm).

        Returns
        -------
        bool
            True when the venue accepted the timer (armed, re-armed or disarmed); False when nothing
            was sent: Binance spot symbols, and venues without a REST cancel-all timer through this
            adapter (Bybit's disconnect-cancel fires on a private websocket disconnect and is not wired).
            :meth:`cancel_all_scope` says what an armed timer covers.

        Raises
        ------
        hedge_core.errors.InvalidInput
            ``seconds`` negative or not finite, or a symbol the venue does not list.
        hedge_core.errors.ExchangeError
            Vendor errors, translated like every other call (temporary ones retried: re-arming
            is idempotent).
        """
        try:
            secs = float(seconds)
        except (TypeError, ValueError):
            raise he.InvalidInput("seconds", seconds, "a finite number of seconds >= 0 (0 disarms)") from None
        if not math.isfinite(secs) or secs < 0:
            raise he.InvalidInput("seconds", seconds, "a finite number of seconds >= 0 (0 disarms)")
        scope = self.cancel_all_scope(symbol)
        if scope == "account":
            await self._ensure_markets()
            self._instrument(symbol)
            timeout = 0 if secs == 0 else min(120, max(10, math.ceil(secs)))
            await self._call("arm_cancel_all_after", lambda: self._ex.privatePostTradeCancelAllAfter(
                {"timeOut": str(timeout)}))
            return True
        if scope != "symbol":
            return False
        await self._ensure_markets()
        self._perp(symbol)
        market_id = self._ex.market(symbol)["id"]
        ms = 0 if secs == 0 else max(1, round(secs * 1000))
        await self._call("arm_cancel_all_after", lambda: self._ex.fapiPrivatePostCountdownCancelAll(
            {"symbol": market_id, "countdownTime": ms}))
        return True
