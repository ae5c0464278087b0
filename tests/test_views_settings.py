"""The settings view tells which keys exist and never carries their values."""

from __future__ import annotations

from dataclasses import asdict

from hedge_core.ui.views.settings import key_status


def test_key_presence_without_values(tmp_path) -> None:
    env = {"HEDGE_BINANCE_API_KEY": "AKIAVERYSECRETKEY123", "HEDGE_BINANCE_API_SECRET": "s3cr3t-value-xyz"}
    status = {s.venue: s for s in key_status(env=env)}
    assert status["binance"].present and status["binance"].source == "environment"
    assert not status["okx"].present and status["okx"].source == ""
    dumped = repr([asdict(s) for s in status.values()])
    assert "AKIAVERYSECRETKEY123" not in dumped and "s3cr3t-value-xyz" not in dumped
    assert "AKIA" not in dumped
