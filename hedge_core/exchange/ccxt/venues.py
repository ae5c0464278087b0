"""How each ccxt venue is driven by :class:`hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`: option
names, client-id parameters, balance/position parameters and per-venue quirks, one frozen
:class:`VenueConfig` per venue in :data:`VENUES`.

``options["recvWindow"]`` (milliseconds) is also the late-execution window of an order whose answer
was lost (:mod:`hedge_core.exchange.outcome`): ccxt's Bybit default is 5 000 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["VENUES", "VenueConfig"]


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
    tested_offline: str = ""


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
        trades_query="bybit_v5",
        hedge_mode_orders=False,
        account_margin_mode=True,
        tested_offline="partial (local simulator, real ccxt): see tests/test_live_bybit.py",
    ),
    "okx": VenueConfig(
        ccxt_id="okx",
        options={"defaultType": "spot", "fetchMarkets": {"types": ["spot", "swap"]},
                 "fetchCurrencies": False, "adjustForTimeDifference": True},
        client_id_param="clientOrderId",
        client_id_query="clientOrderId",
        balance_params={"spot": {"type": "trading"}, "perp": {"type": "trading"}},
        no_change_markers=("59000",),
        tested_offline="configuration and symbol mapping only (no simulator)",
    ),
}
