"""Map venues' own market ids (``BTCUSDT``, ``BTCUSD_PERP``, ``BTC-USDT-SWAP``) to ccxt unified symbols.

Spot bars are stored on the spot symbol (``BTC/USDT``); perp bars, mark bars and funding on the
perp symbol (``BTC/USDT:USDT`` for USDT-margined, ``BTC/USD:BTC`` for coin-margined).
"""

from __future__ import annotations

import re

from hedge_core.errors import DataError

KINDS = ("spot", "perp", "mark", "funding")
# Longest first so 'FDUSD' wins over 'USD' and 'USDT' over 'USD'.
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY", "DAI")
_COIN_M = re.compile(r"^([A-Z0-9]+?)USD(?:_PERP|CM)?(?:\(coin-m\))?$", re.I)
_DASHED = re.compile(r"^([A-Z0-9]+)-([A-Z0-9]+)-(?:PERP|SWAP)$", re.I)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise DataError(f"kind {kind!r} is not allowed; expected one of {list(KINDS)}", column="kind")
    return kind


def unified_symbol(raw: str, kind: str) -> str:
    """ccxt unified symbol of a venue's market id for a series kind.

    >>> unified_symbol('BTCUSDT', 'spot'), unified_symbol('BTCUSDT', 'perp')
    ('BTC/USDT', 'BTC/USDT:USDT')
    >>> unified_symbol('BTCUSD_PERP(coin-m)', 'funding'), unified_symbol('BTC-USDT-PERP', 'funding')
    ('BTC/USD:BTC', 'BTC/USDT:USDT')
    """
    check_kind(kind)
    s = raw.strip()
    if "/" in s:  # already unified
        if kind == "spot":
            return s.split(":")[0]
        if ":" in s:
            return s
        base, quote = s.split("/")
        return f"{base}/{quote}:{quote}"
    if m := _DASHED.match(s):
        base, quote = m.group(1).upper(), m.group(2).upper()
        return _with_kind(base, quote, kind)
    up = s.upper()
    if (up.endswith("_PERP") or up.endswith("CM") or "(COIN-M)" in up) and (m := _COIN_M.match(s)):
        base = m.group(1).upper()
        if kind == "spot":
            raise DataError(f"market id {raw!r} is a coin-margined perp; it has no spot series", column="symbol")
        return f"{base}/USD:{base}"
    for q in QUOTES:
        if up.endswith(q) and len(up) > len(q):
            return _with_kind(up[: -len(q)], q, kind)
    raise DataError(f"market id {raw!r} is not understood; expected e.g. 'BTCUSDT', 'BTCUSD_PERP', "
                    "'BTC-USDT-SWAP' or a ccxt unified symbol 'BTC/USDT:USDT'", column="symbol")


def _with_kind(base: str, quote: str, kind: str) -> str:
    if kind == "spot":
        return f"{base}/{quote}"
    settle = base if quote == "USD" else quote  # inverse (coin-margined) perps settle in the base coin
    return f"{base}/{quote}:{settle}"
