"""The hand-ledger market of two perp legs (bybit first, okx second) shared by ``tests/test_xvenue_perp_perp.py``
(the hand ledger) and ``tests/test_xvenue_pair_sweep.py`` (a sweep point equal to it).

27 hourly bars whose perp and mark closes step at hand-chosen labels; each venue's own funding every 8h
(bybit ``RATES_A``, okx ``RATES_B``); both venues' perp taker fees at their VIP0 schedules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import CrossVenueConfig
from hedge_core.backtest.xvenue_pair import pair_market
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)
FEE_A, FEE_B = 0.00055, 0.0005  # bybit / okx perpetual taker, VIP0
WALLET = 20_000.0
# (first label, perp close, mark close) held until the next row's label
_SEGMENTS = [(0, 40_000.0, 40_000.0), (15, 40_400.0, 40_420.0), (16, 40_800.0, 40_790.0), (23, 41_000.0, 41_020.0),
             (24, 41_200.0, 41_190.0)]
N_BARS = 27
RATES_A = (0.0, 0.0001, 0.00005, 0.0002)  # bybit, settling at 00:00, 08:00, 16:00, 24:00
RATES_B = (0.0, 0.0005, 0.0003, 0.0006)  # okx


def hand_funding(rates: tuple[float, ...]) -> pd.DataFrame:
    return pd.DataFrame({"funding_rate": list(rates), "interval_hours": 8.0},
                        index=pd.DatetimeIndex([T0 + k * 8 * H for k in range(len(rates))]))


def hand_market() -> Market:
    idx = pd.date_range(T0, periods=N_BARS, freq="1h", tz="UTC")
    cols = np.zeros((N_BARS, 2))
    for k, (first, p, m) in enumerate(_SEGMENTS):
        last = _SEGMENTS[k + 1][0] if k + 1 < len(_SEGMENTS) else N_BARS
        cols[first:last] = (p, m)
    perp = pd.DataFrame({"open": cols[:, 0], "high": cols[:, 0], "low": cols[:, 0], "close": cols[:, 0],
                         "volume": 25.0}, index=idx)
    mark = pd.DataFrame({"open": cols[:, 1], "high": cols[:, 1], "low": cols[:, 1], "close": cols[:, 1]}, index=idx)
    prices = Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", perp.copy(), perp, mark, None)
    return pair_market(prices, hand_funding(RATES_A), hand_funding(RATES_B), first_venue="bybit", perp_venue="okx")


def hand_params(**kw: object) -> CrossCarryParams:
    base = dict(legs="perp_perp", spot_venue="bybit", perp_venue="okx", first_perp_taker_fee=FEE_A,
                perp_taker_fee=FEE_B, notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-0.01,
                exit=ExitParams(profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                                max_holding_hours=16, funding_unfavourable_intervals=None, rearm=False))
    return CrossCarryParams(**{**base, **kw})


def hand_config() -> CrossVenueConfig:
    paper = PaperConfig(slippage_bps=2.0, impact_k_bps=0.0, slippage_noise_bps=0.0)
    return CrossVenueConfig(spot_paper=PaperConfig(**{**paper.__dict__, "perp_taker_fee": FEE_A}),
                            perp_paper=PaperConfig(**{**paper.__dict__, "perp_taker_fee": FEE_B}),
                            spot_usdt=WALLET, perp_usdt=WALLET, capital=10_000.0)
