"""The book's view-model and figure (pure): tables and headline from a book answer."""

from __future__ import annotations

import json
import math

from hedge_core.book.aggregate import aggregate
from hedge_core.book.model import HedgePosition
from hedge_core.ui.figures.book import book_figure
from hedge_core.runner.control_api import _clean
from hedge_core.ui.views.book import book_headline, book_tables


def _answer(**var):
    hs = [HedgePosition("a", "binance", "BTC", spot_qty=1, perp_qty=-1, spot_price=100, mark_price=101, leverage=2,
                        liq_price=150, funding=2.0, pnl=5.0),
          HedgePosition("b", "okx", "ETH", spot_qty=2, perp_qty=-1, spot_price=10, mark_price=10, pnl=-1.0)]
    b = aggregate(hs, funding_rows=[{"ts": "2024-01-01T08:00Z", "amount": 2.0}], var=var)
    return json.loads(json.dumps(_clean(b.as_dict())))  # through the API's JSON (NaN -> null)


def test_tables_and_headline():
    book = _answer(historical=12.0, parametric=10.0, confidence=0.99, horizon=24, diversification=1.0)
    t = book_tables(book)
    assert list(t["assets"]["asset"]) == ["BTC", "ETH"] and list(t["assets"]["delta"]) == [0.0, 1.0]
    v = t["venues"].set_index("venue")
    assert math.isclose(v.loc["binance", "liq_distance"], (150 - 101) / 101)
    assert math.isnan(v.loc["okx", "liq_distance"])  # null in JSON -> NaN
    assert list(t["funding"]["amount"]) == [2.0] and t["loans"].empty and t["guards"].empty
    h = book_headline(book)
    assert (h["hedges"], h["pnl"], h["var_historical"], h["funding_last_day"]) == (2, 4.0, 12.0, 2.0)
    assert math.isnan(h["book_ltv"]) and h["var_error"] is None
    fig = book_figure(t["assets"], t["venues"])
    assert len(fig.data) == 5 and list(fig.data[0].y) == [0.0, 10.0]


def test_headline_says_why_there_is_no_var():
    h = book_headline(_answer(error="returns='ETH' ...", confidence=0.99, horizon=24))
    assert h["var_error"].startswith("returns") and math.isnan(h["var_parametric"])


def test_the_guards_say_their_action():
    book = _answer()
    book["guards"] = [{"name": "daily_loss", "scope": "book", "value": -60.0, "limit": -50.0, "action": "flatten",
                       "reason": "book PnL today -60.00 <= -50.00"},
                      {"name": "var", "scope": "book", "value": 20.0, "limit": 10.0, "action": "block_entries",
                       "reason": "book VaR 20.00 >= 10.00"}]
    t = book_tables(book)["guards"]
    assert list(t["action"]) == ["flatten", "block_entries"] and list(t["value"]) == [-60.0, 20.0]
    g = book_headline(book)["guards"]
    assert "action flatten" in g[0] and "flattened" in g[0] and "nothing traded" not in g[0]
    assert "action block_entries" in g[1] and "nothing traded" in g[1]
