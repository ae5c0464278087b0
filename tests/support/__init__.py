"""Test support: a local Binance simulator and the session that redirects ccxt to it."""
