"""The panel's legs table names the contract the hedge leg is on after a calendar roll, and a roll under way."""

from __future__ import annotations

import math

from hedge_core.ui.views.hedges import legs_table


def test_the_perp_row_names_the_contract_and_a_roll_under_way_gets_its_row():
    s = {"spot_symbol": "BTC/USDT", "perp_symbol": "BTC/USDT:USDT", "spot_qty": 0.02, "perp_qty": -0.02,
         "spot_price": 30_000.0, "mark_price": 30_300.0, "leg_contract": "BTC/USDT:USDT-261225"}
    t = legs_table(s)
    assert list(t["symbol"]) == ["BTC/USDT", "BTC/USDT:USDT-261225"]
    assert t.loc[1, "notional"] == 0.02 * 30_300.0
    s2 = {**s, "leg_contract": "BTC/USDT:USDT", "roll": {"from": "BTC/USDT:USDT", "to": "BTC/USDT:USDT-261225",
                                                         "held_from": -0.02, "held_to": -0.01, "target_to": -0.02}}
    t2 = legs_table(s2)
    assert list(t2["leg"]) == ["spot", "perp", "roll"]
    assert (t2.loc[1, "symbol"], t2.loc[2, "symbol"], t2.loc[2, "qty"]) == ("BTC/USDT:USDT", "BTC/USDT:USDT-261225", -0.01)
    assert math.isnan(t2.loc[2, "notional"])
    # a summary without the new keys (an older runner) reads as before
    assert list(legs_table({k: v for k, v in s.items() if k != "leg_contract"})["symbol"]) == ["BTC/USDT", "BTC/USDT:USDT"]
