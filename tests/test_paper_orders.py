"""Paper core: order lifecycle, venue-limit rejections, insufficient funds, client order ids, transfers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hedge_core.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    OperationalError,
    OrderNotFound,
)
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.types import (
    Bar,
    Liquidity,
    MarginMode,
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
)

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta("1h")
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def bars(core: PaperCore, i: int, close: float, *, low: float | None = None, high: float | None = None,
         open_: float | None = None, volume: float = 1_000.0, mark: float | None = None) -> None:
    """Spot, perp and mark bars labelled T0 + i h (known at T0 + (i+1) h)."""
    ts = T0 + i * H
    lo = close if low is None else low
    hi = close if high is None else high
    op = close if open_ is None else open_
    core.apply(Bar(ts, "binance", SPOT, MarketKind.SPOT, op, hi, lo, close, volume))
    core.apply(Bar(ts, "binance", PERP, MarketKind.PERP, op, hi, lo, close, volume))
    m = close if mark is None else mark
    core.apply(Bar(ts, "binance", PERP, MarketKind.MARK, op if mark is None else m, max(hi, m), min(lo, m), m))


def flat_cfg(**kw) -> PaperConfig:
    return PaperConfig(slippage_bps=0.0, impact_k_bps=0.0, **kw)


def new_core(cfg: PaperConfig | None = None, spot_usdt: float = 100_000.0, perp_usdt: float = 100_000.0,
             btc: float = 0.0) -> PaperCore:
    spot = {"USDT": spot_usdt, "BTC": btc}
    balances = {"spot": {k: v for k, v in spot.items() if v > 0},
                "perp": {"USDT": perp_usdt} if perp_usdt > 0 else {}}
    core = PaperCore(cfg or flat_cfg(), balances=balances)
    bars(core, 0, 20_000.0)
    return core


def req(symbol=SPOT, side=Side.BUY, qty=0.1, cid="c1", **kw) -> OrderRequest:
    return OrderRequest(symbol, side, qty, cid, **kw)


def frozen(core: PaperCore) -> str:
    return json.dumps(core.state_dict(), sort_keys=True)


# ---- market and limit lifecycle ------------------------------------------------------------


def test_market_buy_spot_fills_at_last_close_and_moves_balances():
    core = new_core()
    o = core.create_order(req(qty=0.5))
    assert o.status is OrderStatus.CLOSED and o.filled == 0.5 and o.avg_price == 20_000.0
    fee = 0.5 * 20_000 * 0.001
    assert o.fee == pytest.approx(fee)
    b = core.balance("spot")
    assert b["BTC"].free == pytest.approx(0.5)
    assert b["USDT"].free == pytest.approx(100_000 - 10_000 - fee)
    assert core.fills[-1].liquidity is Liquidity.TAKER and core.fills[-1].ts == T0 + H


def test_limit_rests_then_fills_only_when_a_later_bar_trades_through():
    core = new_core()
    o = core.create_order(req(qty=0.5, type=OrderType.LIMIT, price=19_900.0))
    assert o.status is OrderStatus.OPEN and o.filled == 0
    locked = 0.5 * 19_900 * (1 + 0.001)
    assert core.balance("spot")["USDT"].used == pytest.approx(locked)
    bars(core, 1, 19_950.0, low=19_950.0)  # above the limit
    bars(core, 2, 19_950.0, low=19_900.0)  # touches: not through
    assert core.fetch_order(SPOT, order_id=o.id).status is OrderStatus.OPEN
    bars(core, 3, 19_950.0, low=19_850.0)  # through
    done = core.fetch_order(SPOT, client_order_id="c1")
    assert done.status is OrderStatus.CLOSED and done.avg_price == 19_900.0
    f = core.fills[-1]
    assert f.liquidity is Liquidity.MAKER and f.slippage == 0.0
    assert f.fee == pytest.approx(0.5 * 19_900 * 0.001)  # spot maker fee
    assert core.balance("spot")["USDT"].used == pytest.approx(0.0)
    assert core.balance("spot")["USDT"].free == pytest.approx(100_000 - 0.5 * 19_900 * 1.001)


def test_limit_ignores_bars_that_started_before_the_order():
    """An order placed at T0+1h must not fill from a bar labelled T0 (known at T0+1h, e.g. a
    late duplicate at the same instant): only bars opening at or after the order time count."""
    core = new_core()
    o = core.create_order(req(PERP, Side.BUY, 0.01, type=OrderType.LIMIT, price=19_000.0))
    assert o.ts == T0 + H
    core.apply(Bar(T0, "binance", PERP, MarketKind.PERP, 20_000, 20_000, 18_000, 20_000, 1_000))
    assert core.fetch_order(PERP, order_id=o.id).status is OrderStatus.OPEN
    bars(core, 1, 19_500.0, low=18_500.0)  # labelled T0+1h: starts at the order time -> fills
    assert core.fetch_order(PERP, order_id=o.id).status is OrderStatus.CLOSED


def test_marketable_limit_fills_at_once_as_taker_capped_at_limit():
    core = new_core(PaperConfig(slippage_bps=10.0, impact_k_bps=0.0))
    o = core.create_order(req(qty=0.1, type=OrderType.LIMIT, price=20_010.0))
    # slipped price 20000*(1+10bp)=20020 > limit -> capped at the limit
    assert o.status is OrderStatus.CLOSED and o.avg_price == 20_010.0
    assert core.fills[-1].liquidity is Liquidity.TAKER


def test_partial_fills_with_participation_cap_work_across_bars():
    core = new_core(flat_cfg(participation=0.1))
    bars(core, 1, 20_000.0, volume=10.0)  # budget 1 BTC per bar
    o = core.create_order(req(PERP, Side.BUY, 2.5))
    assert o.status is OrderStatus.OPEN and o.filled == pytest.approx(1.0)
    o2 = core.create_order(req(PERP, Side.BUY, 0.5, cid="c2"))  # same bar: budget used up
    assert o2.filled == 0.0 and o2.status is OrderStatus.OPEN
    bars(core, 2, 20_100.0, volume=10.0)
    mid = core.fetch_order(PERP, order_id=o.id)
    assert mid.filled == pytest.approx(2.0) and mid.status is OrderStatus.OPEN
    assert core.fetch_order(PERP, order_id=o2.id).filled == 0.0  # FIFO: the first order took the bar
    bars(core, 3, 20_200.0, volume=10.0)
    done = core.fetch_order(PERP, order_id=o.id)
    assert done.status is OrderStatus.CLOSED and done.filled == pytest.approx(2.5)
    assert done.avg_price == pytest.approx((20_000 + 20_100 + 0.5 * 20_200) / 2.5)
    assert core.fetch_order(PERP, order_id=o2.id).filled == pytest.approx(0.5)
    assert core.positions_view()[0].qty == pytest.approx(3.0)


def test_cancel_keeps_partial_fill_and_releases_lock():
    core = new_core(flat_cfg(participation=0.1))
    bars(core, 1, 20_000.0, volume=10.0)
    o = core.create_order(req(qty=2.0, type=OrderType.LIMIT, price=19_000.0))
    bars(core, 2, 19_500.0, low=18_900.0, volume=10.0)  # fills 1 of 2
    assert core.fetch_order(SPOT, order_id=o.id).filled == pytest.approx(1.0)
    c = core.cancel_order(SPOT, client_order_id="c1")
    assert c.status is OrderStatus.CANCELED and c.filled == pytest.approx(1.0)
    assert core.balance("spot")["USDT"].used == pytest.approx(0.0)
    with pytest.raises(OrderNotFound, match="-2011"):
        core.cancel_order(SPOT, order_id=o.id)
    assert core.open_orders() == []


def test_fetch_unknown_order_raises_order_not_found():
    core = new_core()
    with pytest.raises(OrderNotFound):
        core.fetch_order(SPOT, client_order_id="nope")
    o = core.create_order(req())
    with pytest.raises(OrderNotFound):  # right id, wrong symbol
        core.fetch_order(PERP, order_id=o.id)


def test_duplicate_client_order_id_is_rejected_and_changes_nothing():
    core = new_core()
    first = core.create_order(req(qty=0.1, cid="dup"))
    before = frozen(core)
    with pytest.raises(DuplicateOrder, match="Duplicate clientOrderId"):
        core.create_order(req(qty=0.2, cid="dup"))
    assert frozen(core) == before
    assert core.fetch_order(SPOT, client_order_id="dup") == first
    assert isinstance(DuplicateOrder("x"), InvalidOrder)


def test_client_order_id_format_and_reserved_prefix():
    core = new_core()
    with pytest.raises(InvalidOrder, match="reserved"):
        core.create_order(req(cid="liq-1"))
    with pytest.raises(InvalidOrder, match="1..36"):
        core.create_order(req(cid="x" * 37))
    with pytest.raises(InvalidOrder, match="1..36"):
        core.create_order(req(cid=""))


def test_rejected_request_does_not_consume_its_client_order_id():
    core = new_core(spot_usdt=100.0)
    with pytest.raises(InsufficientFunds):
        core.create_order(req(qty=0.1, cid="x1"))
    core.deposit("spot", "USDT", 10_000.0)
    assert core.create_order(req(qty=0.1, cid="x1")).status is OrderStatus.CLOSED


# ---- reduce-only ---------------------------------------------------------------------------


def test_reduce_only_without_position_is_rejected():
    core = new_core()
    with pytest.raises(InvalidOrder, match="-2022"):
        core.create_order(req(PERP, Side.SELL, 0.01, reduce_only=True))


def test_reduce_only_is_clamped_to_the_position_and_the_rest_expires():
    core = new_core()
    core.create_order(req(PERP, Side.BUY, 0.01, cid="open"))
    with pytest.raises(InvalidOrder, match="-2022"):  # same direction would increase
        core.create_order(req(PERP, Side.BUY, 0.01, cid="r0", reduce_only=True))
    o = core.create_order(req(PERP, Side.SELL, 0.05, cid="r1", reduce_only=True))
    assert o.filled == pytest.approx(0.01) and o.status is OrderStatus.EXPIRED
    assert core.positions_view() == []


def test_reduce_only_limit_expires_when_position_closes():
    core = new_core()
    core.create_order(req(PERP, Side.BUY, 0.01, cid="open"))
    ro = core.create_order(req(PERP, Side.SELL, 0.01, cid="tp", type=OrderType.LIMIT, price=21_000.0,
                               reduce_only=True))
    core.create_order(req(PERP, Side.SELL, 0.01, cid="close"))
    bars(core, 1, 21_500.0, high=21_600.0)
    assert core.fetch_order(PERP, order_id=ro.id).status is OrderStatus.EXPIRED
    assert core.fetch_order(PERP, order_id=ro.id).filled == 0.0


def test_one_way_flip_realises_pnl_and_opens_the_rest():
    core = new_core(flat_cfg(perp_taker_fee=0.0))
    core.create_order(req(PERP, Side.BUY, 1.0, cid="a"))
    bars(core, 1, 21_000.0)
    w0 = core.wallet
    core.create_order(req(PERP, Side.SELL, 3.0, cid="b"))
    (p,) = core.positions_view()
    assert p.qty == pytest.approx(-2.0) and p.entry_price == 21_000.0
    assert core.wallet - w0 == pytest.approx(1_000.0)  # realised on the closed 1 BTC


def test_hedge_mode_long_and_short_positions_coexist():
    core = new_core(flat_cfg(position_mode=PositionMode.HEDGE))
    with pytest.raises(InvalidOrder, match="-4061"):
        core.create_order(req(PERP, Side.BUY, 0.01))  # position_side BOTH in hedge mode
    core.create_order(req(PERP, Side.BUY, 0.02, cid="L", position_side=PositionSide.LONG))
    core.create_order(req(PERP, Side.SELL, 0.01, cid="S", position_side=PositionSide.SHORT))
    sides = {p.position_side: p.qty for p in core.positions_view()}
    assert sides == {PositionSide.LONG: pytest.approx(0.02), PositionSide.SHORT: pytest.approx(-0.01)}
    # closing the long (SELL on LONG) never opens a short
    o = core.create_order(req(PERP, Side.SELL, 0.05, cid="xL", position_side=PositionSide.LONG))
    assert o.filled == pytest.approx(0.02)
    assert {p.position_side for p in core.positions_view()} == {PositionSide.SHORT}
    with pytest.raises(OperationalError, match="-4068"):
        core.set_position_mode(PositionMode.ONE_WAY)


# ---- venue limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("symbol,qty,kw,reason", [
    (PERP, 0.0015, {}, "LOT_SIZE"),  # not a multiple of the 0.001 lot
    (PERP, 0.0005, {}, "LOT_SIZE"),  # below min qty
    (SPOT, 0.000015, {}, "LOT_SIZE"),
    (PERP, 0.01, {"type": OrderType.LIMIT, "price": 19_999.95}, "PRICE_FILTER"),  # tick 0.1
    (SPOT, 0.01, {"type": OrderType.LIMIT, "price": 19_999.995}, "PRICE_FILTER"),  # tick 0.01
    (PERP, 0.004, {}, "MIN_NOTIONAL"),  # 80 USDT < 100
    (SPOT, 0.0002, {}, "MIN_NOTIONAL"),  # 4 USDT < 5
    (PERP, -0.01, {}, "LOT_SIZE"),
])
def test_venue_filters_reject_with_binance_reason_and_change_nothing(symbol, qty, kw, reason):
    core = new_core()
    before = frozen(core)
    with pytest.raises(InvalidOrder, match=f"Filter failure: {reason}"):
        core.create_order(req(symbol, Side.BUY, qty, **kw))
    assert frozen(core) == before


def test_min_notional_does_not_apply_to_reduce_only():
    core = new_core()
    core.create_order(req(PERP, Side.BUY, 0.01, cid="a"))
    o = core.create_order(req(PERP, Side.SELL, 0.004, cid="b", reduce_only=True))
    assert o.filled == pytest.approx(0.004)


def test_leverage_limits():
    core = new_core()
    with pytest.raises(InvalidOrder, match="-4028"):
        core.set_leverage(PERP, 126)
    with pytest.raises(InvalidOrder, match="-4028"):
        core.set_leverage("ETH/USDT:USDT", 126)  # the default ETH table's bracket 1 allows 125x (2021: 100x)
    with pytest.raises(InvalidOrder, match="not a perpetual"):
        core.set_leverage(SPOT, 2)
    core.set_leverage(PERP, 125)
    # at 125x only the first bracket (notional < 50,000) is allowed: -2027
    with pytest.raises(InvalidOrder, match="-2027"):
        core.create_order(req(PERP, Side.BUY, 3.0))
    core.set_leverage(PERP, 100)
    assert core.create_order(req(PERP, Side.BUY, 3.0)).filled == pytest.approx(3.0)


def test_margin_mode_change_refused_with_open_position():
    core = new_core()
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    core.set_margin_mode(PERP, MarginMode.ISOLATED)  # idempotent
    core.create_order(req(PERP, Side.BUY, 0.01))
    with pytest.raises(OperationalError, match="-4048"):
        core.set_margin_mode(PERP, MarginMode.CROSS)


def test_unknown_symbol_and_no_price_yet():
    core = new_core()
    with pytest.raises(InvalidOrder, match="Invalid symbol"):
        core.create_order(req("PEPE/USDT", Side.BUY, 1.0))
    empty = PaperCore(flat_cfg(), balances={"spot": {"USDT": 1000.0}})
    with pytest.raises(OperationalError, match="no market price"):
        empty.create_order(req())


# ---- funds -------------------------------------------------------------------------------------


def test_spot_buy_beyond_quote_balance_is_insufficient_funds():
    core = new_core(spot_usdt=1_000.0)
    before = frozen(core)
    with pytest.raises(InsufficientFunds, match="-2010"):
        core.create_order(req(qty=0.05))  # 1000 USDT + fee > 1000
    assert frozen(core) == before
    core.create_order(req(qty=0.0499, cid="ok"))  # 998 + 0.998 fee fits


def test_no_spot_shorting():
    core = new_core(btc=0.1)
    with pytest.raises(InsufficientFunds):
        core.create_order(req(side=Side.SELL, qty=0.2))
    assert core.create_order(req(side=Side.SELL, qty=0.1, cid="s")).filled == pytest.approx(0.1)
    with pytest.raises(InsufficientFunds):
        core.create_order(req(side=Side.SELL, qty=0.001, cid="s2"))


def test_locked_funds_are_not_spendable_twice():
    core = new_core(spot_usdt=2_100.0)
    core.create_order(req(qty=0.1, cid="l1", type=OrderType.LIMIT, price=19_000.0))  # locks 1901.9
    with pytest.raises(InsufficientFunds):
        core.create_order(req(qty=0.1, cid="l2", type=OrderType.LIMIT, price=19_000.0))


def test_perp_margin_insufficient():
    core = new_core(perp_usdt=100.0)
    core.set_leverage(PERP, 1)
    before = frozen(core)
    with pytest.raises(InsufficientFunds, match="-2019"):
        core.create_order(req(PERP, Side.BUY, 0.01))  # needs 200 USDT margin
    assert frozen(core) == before
    core.set_leverage(PERP, 10)
    assert core.create_order(req(PERP, Side.BUY, 0.01)).filled == pytest.approx(0.01)


def test_transfer_between_wallets_and_limits():
    core = new_core(spot_usdt=1_000.0, perp_usdt=0.0)
    core.transfer("USDT", 600.0, "spot", "perp")
    assert core.balance("spot")["USDT"].total == pytest.approx(400.0)
    assert core.wallet == pytest.approx(600.0)
    with pytest.raises(InsufficientFunds):
        core.transfer("USDT", 500.0, "spot", "perp")
    core.set_leverage(PERP, 10)
    core.create_order(req(PERP, Side.BUY, 0.1))  # 200 USDT initial margin + 1 fee
    with pytest.raises(InsufficientFunds, match="-2019"):
        core.transfer("USDT", 500.0, "perp", "spot")
    core.transfer("USDT", 300.0, "perp", "spot")
    assert core.balance("spot")["USDT"].total == pytest.approx(700.0)
    with pytest.raises(InvalidInput, match="currency"):
        core.transfer("BTC", 0.1, "spot", "perp")
    with pytest.raises(InvalidInput, match="from_account"):
        core.transfer("USDT", 1.0, "margin", "perp")
    with pytest.raises(InvalidInput, match="amount"):
        core.transfer("USDT", -1.0, "spot", "perp")
    assert len(core.transfers) == 2


def test_events_out_of_order_are_refused():
    core = new_core()
    with pytest.raises(InvalidInput, match="time order"):
        core.apply(Bar(T0 - H, "binance", SPOT, MarketKind.SPOT, 1, 1, 1, 1, 1))


def test_config_validation_names_the_field():
    with pytest.raises(InvalidInput, match="participation"):
        PaperConfig(participation=1.5)
    with pytest.raises(InvalidInput, match="spot_taker_fee"):
        PaperConfig(spot_taker_fee=-0.1)
