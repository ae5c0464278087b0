"""Parse Binance public bulk-download files (the data.binance.vision layout).

Klines (spot, USDT-M/COIN-M futures, markPriceKlines): 12 columns
``open_time, open, high, low, close, volume, close_time, quote_volume, count,
taker_buy_volume, taker_buy_quote_volume, ignore``, with or without a header line.
``open_time`` is epoch milliseconds, except newer SPOT files (2025 onwards) which use
MICROseconds: the unit is detected from the magnitude of the numbers.
fundingRate: ``calc_time, funding_interval_hours, last_funding_rate`` with a header.

File names: ``BTCUSDT-1h-2024-01.zip`` (monthly), ``BTCUSDT-1h-2024-01-15.zip`` (daily),
``BTCUSDT-fundingRate-2024-01.zip``; zipped or plain ``.csv``. The market type is read from
the folder path when it follows the site layout (``spot/``, ``futures/um/``, ``futures/cm/``,
``markPriceKlines/``), else it must be given.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from hedge_core.data.symbols import unified_symbol
from hedge_core.data.validate import ROW_COL, canonical_bars, canonical_funding
from hedge_core.errors import DataError

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                 "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
KLINE_NAME = re.compile(r"^(?P<pair>[A-Z0-9_]+)-(?P<tf>\d+[smhdwM])-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$")
FUNDING_NAME = re.compile(r"^(?P<pair>[A-Z0-9_]+)-fundingRate-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$")


def is_bulk_name(name: str) -> bool:
    return bool(KLINE_NAME.match(name) or FUNDING_NAME.match(name))


def read_bytes(path: Path) -> bytes:
    """The CSV text of a bulk file: the single CSV inside a zip, or the file itself."""
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.lower().endswith(".csv")]
                if len(names) != 1:
                    raise DataError(f"zip holds {len(names)} CSV files; expected exactly one", file=str(path))
                return z.read(names[0])
        except zipfile.BadZipFile as e:
            raise DataError(f"not a valid zip file ({e})", file=str(path)) from None
    return path.read_bytes()


def _has_header(data: bytes) -> bool:
    first = data.lstrip()[:64].split(b",", 1)[0].strip()
    return not first.replace(b".", b"", 1).isdigit()


def kind_from_path(path: Path) -> str | None:
    """``spot`` / ``perp`` / ``mark`` from a data.binance.vision folder layout, None when unknown."""
    parts = [p.lower() for p in path.parts]
    if "markpriceklines" in parts:
        return "mark"
    if "futures" in parts or "um" in parts or "cm" in parts:
        return "perp"
    if "spot" in parts:
        return "spot"
    return None


def parse_klines(path: Path, *, kind: str | None = None, symbol: str | None = None,
                 timeframe: str | None = None) -> tuple[str, str, str, pd.DataFrame]:
    """Parse one klines file into ``(symbol, kind, timeframe, canonical frame with _row)``.

    ``kind``/``symbol``/``timeframe`` override what the folder and file name say. Mark klines
    get NaN volume (mark prices have none). Errors name the 1-based data row.
    """
    m = KLINE_NAME.match(path.name)
    if timeframe is None:
        if not m:
            raise DataError("cannot read the timeframe from the file name (expected 'BTCUSDT-1h-2024-01.zip'); "
                            "pass timeframe=", file=str(path))
        timeframe = m.group("tf")
    kind = kind or kind_from_path(path)
    if kind is None:
        raise DataError("cannot tell spot, perp or mark klines from the folder (expected the data.binance.vision "
                        "layout spot/ | futures/um/ | markPriceKlines/); pass kind=", file=str(path))
    if symbol is None:
        if not m:
            raise DataError("cannot read the market id from the file name; pass symbol=", file=str(path))
        symbol = unified_symbol(m.group("pair"), kind)
    data = read_bytes(path)
    header = _has_header(data)
    raw = pd.read_csv(io.BytesIO(data), header=0 if header else None,
                      names=None if header else list(KLINE_COLUMNS))
    if header:
        if len(raw.columns) != len(KLINE_COLUMNS):
            raise DataError(f"klines file has {len(raw.columns)} columns; expected 12", file=str(path))
        raw.columns = list(KLINE_COLUMNS)
    else:
        n = data.lstrip().split(b"\n", 1)[0].count(b",") + 1
        if n != len(KLINE_COLUMNS):
            raise DataError(f"klines file has {n} columns on line 1; expected 12", file=str(path))
    frame = pd.DataFrame({"ts": raw["open_time"], "open": raw["open"], "high": raw["high"], "low": raw["low"],
                          "close": raw["close"], "volume": np.nan if kind == "mark" else raw["volume"],
                          ROW_COL: np.arange(1, len(raw) + 1)})
    bars = canonical_bars(frame, file=str(path), timeframe=timeframe, keep_rows=True)
    return symbol, kind, timeframe, bars


def parse_funding(path: Path, *, symbol: str | None = None) -> tuple[str, pd.DataFrame]:
    """Parse one fundingRate file into ``(perp symbol, canonical funding frame with _row)``."""
    if symbol is None:
        m = FUNDING_NAME.match(path.name)
        if not m:
            raise DataError("cannot read the market id from the file name "
                            "(expected 'BTCUSDT-fundingRate-2024-01.zip'); pass symbol=", file=str(path))
        symbol = unified_symbol(m.group("pair"), "funding")
    raw = pd.read_csv(io.BytesIO(read_bytes(path)))
    missing = [c for c in ("calc_time", "last_funding_rate") if c not in raw.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the file has {list(raw.columns)}", file=str(path),
                        column=missing[0])
    frame = pd.DataFrame({"ts": raw["calc_time"], "funding_rate": raw["last_funding_rate"],
                          ROW_COL: np.arange(1, len(raw) + 1)})
    if "funding_interval_hours" in raw.columns:
        frame["interval_hours"] = raw["funding_interval_hours"]
    return symbol, canonical_funding(frame, file=str(path), keep_rows=True)


def has_header(path: Path) -> bool:
    """True when the (possibly zipped) CSV starts with a header line."""
    return _has_header(read_bytes(path)[:256])
