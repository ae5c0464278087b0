"""DEGRADED conditions and the alert bus (hedge_core.runner.condition)."""

import pytest

from hedge_core.runner.condition import AlertBus, AlertMessage, Conditions


def test_conditions_alert_once_per_episode_and_clear_by_key():
    c = Conditions()
    assert not c.degraded
    assert c.raise_("stale_price", "ticker 12 s old") is True
    assert c.raise_("stale_price", "ticker 12 s old") is False  # same episode: no second alert
    assert c.raise_("stale_price", "ticker 30 s old") is True  # message changed: say it again
    assert c.raise_("reconcile", "perp 0.01 BTC apart") is True
    assert c.degraded and c.as_dict() == {"stale_price": "ticker 30 s old", "reconcile": "perp 0.01 BTC apart"}
    assert c.clear("stale_price") is True and c.clear("stale_price") is False
    assert c.as_dict() == {"reconcile": "perp 0.01 BTC apart"}
    with pytest.raises(ValueError, match="key"):
        c.raise_("", "x")


def test_bus_fans_out_and_a_failing_sink_breaks_nothing():
    bus, got = AlertBus(), []

    def broken(_m: AlertMessage) -> None:
        raise RuntimeError("webhook down")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    m = AlertMessage("error", "state_error", "hedge in ERROR", hedge_id="h1")
    bus.emit(m)
    assert got == [m] and bus.recent == [m]
    with pytest.raises(ValueError, match="level"):
        AlertMessage("loud", "x", "y")  # type: ignore[arg-type]
