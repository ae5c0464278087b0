"""Bybit's own id of a USDT dated future (Get Instruments Info, https://bybit-exchange.github.io/docs/v5/market/instrument:
``BTCUSDT-27MAR26``), built without the process locale (strftime's %b would name March "Mär" under de_DE)."""

from __future__ import annotations

import pytest

from hedge_core.exchange.ccxt.delivery import bybit_dated_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("ymd,want", [("260327", "BTCUSDT-27MAR26"), ("250131", "BTCUSDT-31JAN25"),
                                      ("241227", "BTCUSDT-27DEC24"), ("250926", "BTCUSDT-26SEP25")])
def test_the_id_is_the_venues_naming(ymd, want):
    assert bybit_dated_id("BTC", "USDT", ymd) == want


def test_every_month_is_its_english_abbreviation():
    names = [bybit_dated_id("ETH", "USDT", f"26{m:02d}15")[-5:-2] for m in range(1, 13)]
    assert names == ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def test_a_month_outside_the_calendar_is_refused_naming_it():
    with pytest.raises(ValueError, match="month 13"):
        bybit_dated_id("BTC", "USDT", "261301")
