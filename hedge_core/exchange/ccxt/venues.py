"""How each ccxt venue is driven by :class:`hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`: option
names, client-id parameters, balance/position parameters and per-venue quirks, one frozen
:class:`VenueConfig` per venue in :data:`VENUES`.

``options["recvWindow"]`` (milliseconds) is also the late-execution window of an order whose answer
was lost (:mod:`hedge_core.exchange.outcome`): ccxt's Bybit default is 5 000 ms. OKX has no recvWindow: its
order requests carry the ``expTime`` header instead (``order_deadline_header``), set to the request's
timestamp + ``options["recvWindow"]``, so the venue's deadline and the adapter's window are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VENUES", "VenueConfig", "own_client_id", "venue_client_id"]


@dataclass(frozen=True)
class VenueConfig:
    """How one ccxt venue is driven (option names differ per exchange)."""

    ccxt_id: str
    options: dict[str, Any]
    client_id_param: str  # create_order param carrying the client order id
    client_id_query: str  # fetch/cancel param naming an order by client id
    balance_params: dict[str, dict[str, Any]]  # account -> fetch_balance params
    perp_params: dict[str, Any] = field(default_factory=dict)  # extra params for perp calls
    no_change_markers: tuple[str, ...] = ()  # error codes/messages meaning "nothing to change"
    positions_params: dict[str, Any] = field(default_factory=dict)  # fetch_positions params
    cid_lookup: str = "fetch_order"  # how to fetch an order by client id: ccxt fetch_order | bybit_v5
    # sign of ccxt's funding-history ``amount`` as a cash flow: Binance's income ledger is + received;
    # Bybit's v5 execution list reports funding as ``execFee``, a charge (> 0 paid)
    funding_amount_sign: float = 1.0
    # own executions: ccxt fetch_my_trades | bybit_v5 (ccxt asks Bybit for execType=Trade only,
    # which hides the venue's liquidation (BustTrade) and ADL (AdlTrade) fills)
    trades_query: str = "fetch_my_trades"
    hedge_mode_orders: bool = True  # position-side orders supported by this adapter
    # Bybit's unified account has ONE margin mode for all positions (GET /v5/account/info), and
    # its positions do not report one: the adapter reads it from the account
    account_margin_mode: bool = False
    # fetch_brackets reads the venue's maintenance table in Binance's model (MMR and cum per
    # notional bracket); other venues' risk-limit tiers are not mapped
    brackets: bool = False
    # the venue's client-id alphabet: "" (ours as is: Binance/Bybit take ``[.A-Z:/a-z0-9_-]``) | "alnum" (OKX
    # ``clOrdId``: up to 32 alphanumerics, so the one '-' of :func:`hedge_core.types.client_order_id` is dropped
    # on the way out and put back on the way in, see :func:`venue_client_id` / :func:`own_client_id`)
    client_id_style: str = ""
    # dated (delivery) linear futures are loaded as derivative instruments too (OKX FUTURES, Binance USD-M
    # quarterlies, Bybit USDT LinearFutures: the calendar roll)
    dated_futures: bool = False
    # maintenance tiers in contracts (OKX ``/api/v5/public/position-tiers`` minSz/maxSz): converted to notional
    # with the contract size and the mark price at read time (:func:`hedge_core.analytics.risk.okx_tiers_to_notional`)
    tiers_in_contracts: bool = False
    # fetch_open_orders without a symbol: one call per market family. ccxt's okx sends unknown params as
    # they are (OKX filters "Get order List" by ``instType``, not ``type``: a ``type`` call answers every order)
    open_orders_params: tuple[dict[str, Any], ...] = ({"type": "spot"}, {"type": "swap", "subType": "linear"})
    # OKX's margin mode is per order (``tdMode`` cross | isolated, "Place order"): set_margin_mode makes no
    # request, it sets the mode the adapter sends with that perp's orders and leverage (default cross)
    margin_mode_per_order: bool = False
    # a request header bounding when the venue may still process an order request: OKX ``expTime`` ("Overview" ->
    # "Transaction Timeouts": "the request will not be processed if the current system time of the server is
    # after the expTime"); without it OKX processes a signed request up to 30 s after its timestamp, longer than
    # the adapter's outcome window (recvWindow + margin) -- a lost order could execute after being written off
    order_deadline_header: str = ""
    # the venue's exchange-side cancel-all timer reachable over REST (the dead man's switch's third layer):
    # "symbol" = Binance USD-M ``POST /fapi/v1/countdownCancelAll``, one countdown per perp symbol;
    # "account" = OKX ``POST /api/v5/trade/cancel-all-after``, one countdown for every pending order of the
    # account (spot and derivatives); "" = none through this adapter (Bybit's disconnect-cancel, DCP, fires
    # on a private WEBSOCKET disconnect, must be enabled by the account manager, and is not wired)
    cancel_all_after: str = ""
    # how the account's funding records page (fetch_funding_payments reads ALL of them since ``since``):
    # "forward" = Binance ``GET /fapi/v1/income``: oldest first from startTime, ``limit`` default 100, max 1000
    #   ("If the number of data between startTime and endTime is larger than limit, response will be return as
    #   startTime+limit");
    # "windows" = Bybit ``GET /v5/execution/list``: at most 7 days per request ("Only startTime is passed, return
    #   range between startTime and startTime+7 days"), newest first, ``limit`` [1, 100] default 50;
    # "bills" = OKX ``GET /api/v5/account/bills-archive``: newest first, ``limit`` max 100, ``begin`` filters by
    #   time and ``after`` pages to records earlier than a ``billId`` (ccxt sends neither: the adapter does)
    funding_paging: str = "forward"
    tested_offline: str = ""
    # where the funding INTERVAL is read when the funding-rate answer has none: "" = the answer's own (Bybit: the
    # instrument's ``fundingInterval``, minutes; OKX: ``nextFundingTime - fundingTime``); "fundingInfo" = Binance
    # USD-M ``GET /fapi/v1/fundingInfo`` ("Get Funding Rate Info": only "symbols that had FundingRateCap/
    # FundingRateFloor/fundingIntervalHours adjustment" are listed, with ``fundingIntervalHours``; any other
    # perpetual settles every 8 h), since ``premiumIndex`` carries ``nextFundingTime`` but no interval
    funding_interval_source: str = ""


VENUES: dict[str, VenueConfig] = {
    "binance": VenueConfig(
        ccxt_id="binance",
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot", "linear"]},  # no dapi (coin-M) calls
            "fetchCurrencies": False,  # no signed /sapi calls when loading markets
            "fetchMargins": False,
            "adjustForTimeDifference": True,
            "recvWindow": 10_000,
            "fetchOpenOrders": {"warnWithoutSymbol": False},
            "setMarginMode": {"throwMarginModeAlreadySet": True},
            "newOrderRespType": {"market": "FULL", "limit": "FULL"},
        },
        client_id_param="newClientOrderId",
        client_id_query="origClientOrderId",
        balance_params={"spot": {"type": "spot"}, "perp": {"type": "swap", "subType": "linear"}},
        perp_params={},
        no_change_markers=("-4046", "-4059", "No need to change"),
        brackets=True,
        # USD-M quarterlies (exchangeInfo contractType CURRENT_QUARTER / NEXT_QUARTER, symbol BTCUSDT_YYMMDD =
        # ccxt BTC/USDT:USDT-YYMMDD, ``deliveryDate``): the calendar roll's destination, traded through /fapi
        dated_futures=True,
        cancel_all_after="symbol",
        funding_interval_source="fundingInfo",
        tested_offline="full (local simulator, real ccxt)",
    ),
    "bybit": VenueConfig(
        ccxt_id="bybit",
        options={"defaultType": "spot", "fetchMarkets": {"types": ["spot", "linear"]},
                 "fetchCurrencies": False, "adjustForTimeDifference": True,
                 # unified trading account assumed: no key-permission probe before private calls
                 "enableUnifiedMargin": False, "enableUnifiedAccount": True,
                 # /v5/order/realtime sees the last 500 orders: enough for our just-placed orders
                 "fetchOrder": {"acknowledged": True}},
        client_id_param="clientOrderId",
        client_id_query="orderLinkId",
        balance_params={"spot": {"type": "unified"}, "perp": {"type": "unified"}},
        positions_params={"type": "swap", "subType": "linear", "settleCoin": "USDT"},
        cid_lookup="bybit_v5",
        no_change_markers=("110025", "110026", "110043", "not modified"),
        funding_amount_sign=-1.0,
        funding_paging="windows",
        trades_query="bybit_v5",
        hedge_mode_orders=False,
        account_margin_mode=True,
        # USDT-settled linear dated futures ("Get Instruments Info" category linear, contractType LinearFutures,
        # symbol BTCUSDT-27MAR26 = ccxt BTC/USDT:USDT-260327, ``deliveryTime``): the calendar roll's destination,
        # loaded by the "linear" fetchMarkets type with the perpetual, traded and held under category linear
        dated_futures=True,
        tested_offline="partial (local simulator, real ccxt): see tests/test_live_bybit.py",
    ),
    "okx": VenueConfig(
        ccxt_id="okx",
        # spot, perpetual swaps and dated futures (the calendar roll's quarterly); one order per request
        # ("POST /api/v5/trade/order" instead of ccxt's default batch endpoint: one answer, one sCode)
        options={"defaultType": "spot", "fetchMarkets": {"types": ["spot", "swap", "future"]},
                 "fetchCurrencies": False, "adjustForTimeDifference": True,
                 "createOrder": "privatePostTradeOrder",
                 # not a ccxt option for okx: the window of the expTime header (order_deadline_header)
                 "recvWindow": 10_000},
        client_id_param="clientOrderId",
        client_id_query="clientOrderId",
        # the unified (trading) account: one wallet for spot and derivatives ("Get balance")
        balance_params={"spot": {"type": "trading"}, "perp": {"type": "trading"}},
        hedge_mode_orders=False,  # long/short-mode orders (posSide) are not simulated: refused
        client_id_style="alnum",
        dated_futures=True,
        open_orders_params=({"instType": "SPOT"}, {"instType": "SWAP"}, {"instType": "FUTURES"}),
        margin_mode_per_order=True,
        tiers_in_contracts=True,
        order_deadline_header="expTime",
        cancel_all_after="account",
        funding_paging="bills",
        tested_offline="partial (local simulator, real ccxt): see tests/test_live_okx.py, tests/test_live_okx_faults.py "
                       "and the OKX column of tests/test_live_fault_matrix.py",
    ),
}


_OWN_CID = re.compile(r"^(h.\d{6})([0-9a-f]{20})$")


def venue_client_id(cid: str, style: str) -> str:
    """Our client order id in the venue's alphabet: unchanged, or (``"alnum"``, OKX) without its '-'."""
    return cid.replace("-", "") if style == "alnum" else cid


def own_client_id(venue_cid: str, style: str) -> str:
    """The inverse of :func:`venue_client_id` for ids made by :func:`hedge_core.types.client_order_id`
    (``h<leg><seq 5><attempt>-<20 hex>``); any other id comes back as the venue shows it."""
    if style == "alnum":
        m = _OWN_CID.match(venue_cid or "")
        if m:
            return f"{m.group(1)}-{m.group(2)}"
    return venue_cid
