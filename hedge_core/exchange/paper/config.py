"""Paper venue settings: :class:`PaperConfig`, :func:`default_instruments` and account constants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.types import (
    Bracket,
    Instrument,
    MarginMode,
    MarketKind,
    PositionMode,
    PositionSide,
)

__all__ = ["ACCOUNTS", "SETTLE", "PaperConfig", "default_instruments"]

ACCOUNTS = ("spot", "perp")
SETTLE = "USDT"
_EPS = 1e-12
_PSIDES = (PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT)
_TF_CACHE: dict[str, pd.Timedelta] = {}


def _tf(timeframe: str) -> pd.Timedelta:
    td = _TF_CACHE.get(timeframe)
    if td is None:
        from hedge_core.exchange.feeds import timeframe_delta

        td = _TF_CACHE[timeframe] = timeframe_delta(timeframe)
    return td


def default_instruments(venue: str = "binance") -> tuple[Instrument, ...]:
    """BTC and ETH spot and USDT-M perps with Binance's limits and brackets (the committed snapshot,
    :mod:`hedge_core.data.instruments`, where each figure's source is named), labelled with ``venue``.

    Order: BTC spot, ETH spot, BTC perp, ETH perp. A paper venue's default instrument set is wider:
    every snapshot symbol (:func:`hedge_core.data.instruments.venue_instruments`).
    """
    from hedge_core.data.instruments import snapshot

    snap = snapshot()
    return tuple(replace(snap[("binance", s)], venue=venue)
                 for s in ("BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"))


def _own_tables(instruments: tuple[Instrument, ...]) -> dict[str, tuple[Bracket, ...]]:
    """Perps whose own table is not the committed default of their symbol: listed in ``brackets`` too, so
    every reader of the config sees them (the fast path runs only when this table is the instrument's own,
    the one the engine's guard reads)."""
    from hedge_core.analytics.risk import brackets_for

    out: dict[str, tuple[Bracket, ...]] = {}
    for i in instruments:
        if i.kind is MarketKind.PERP and i.brackets:
            try:
                default = brackets_for(i.symbol)
            except InvalidInput:
                default = ()
            if i.brackets != default:
                out[i.symbol] = i.brackets
    return out


def _check_rate(name: str, v: float, hi: float = 0.1) -> None:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= hi):
        raise InvalidInput(name, v, f"a fraction in [0, {hi}]")


@dataclass(frozen=True)
class PaperConfig:
    """Frozen settings of a paper venue.

    Attributes
    ----------
    venue : str
        Venue name reported by the adapter.
    spot_maker_fee, spot_taker_fee, perp_maker_fee, perp_taker_fee : float
        Fee rates, fractions of notional (Binance VIP0: spot 0.1 %/0.1 %, USDT-M 0.02 %/0.05 %).
    slippage_bps : float
        Fixed slippage per taker fill, basis points of the reference price.
    impact_k_bps : float
        Impact coefficient k: impact_bps = k * sqrt(fill_qty / bar_volume).
    slippage_noise_bps : float
        Std-dev of seeded Gaussian noise added to the slippage (0 = none; total floored at 0).
    participation : float or None
        Max fraction of each bar's volume that this venue's orders of one instrument fill per
        bar; None = unlimited (every order fills in full at once).
    liquidation_fee_rate : float
        Liquidation clearance fee, fraction of the liquidated notional.
    default_leverage : float
        Leverage of a perp symbol before set_leverage (Binance default 20x, capped by max).
    default_margin_mode : MarginMode
    position_mode : PositionMode
        Initial position mode.
    seed : int
        Seed of the slippage-noise RNG.
    instruments : tuple of Instrument
        Tradable markets with their limits and (perps) brackets; empty (the default) = every symbol of
        the committed snapshot for ``venue`` (:func:`hedge_core.data.instruments.venue_instruments`).
        Backtests and the runner pass the store's rows (:func:`hedge_core.data.instruments.pair_instruments`).
    brackets : mapping symbol -> bracket table, optional
        Maintenance tables overriding the instruments' own (a perp without either uses the
        committed default of :func:`hedge_core.analytics.risk.brackets_for`).
    quarterlies : tuple of PaperQuarterly
        Simulated dated futures (:mod:`hedge_core.exchange.paper.quarterly`), priced from their spot at a
        fixed annualised basis; each is listed as an instrument like its asset's perp. Empty by default.
    """

    venue: str = "binance"
    spot_maker_fee: float = 0.001
    spot_taker_fee: float = 0.001
    perp_maker_fee: float = 0.0002
    perp_taker_fee: float = 0.0005
    slippage_bps: float = 1.0
    impact_k_bps: float = 10.0
    slippage_noise_bps: float = 0.0
    participation: float | None = None
    liquidation_fee_rate: float = 0.005
    default_leverage: float = 20.0
    default_margin_mode: MarginMode = MarginMode.CROSS
    position_mode: PositionMode = PositionMode.ONE_WAY
    seed: int = 0
    instruments: tuple[Instrument, ...] = ()
    brackets: Mapping[str, tuple[Bracket, ...]] = field(default_factory=dict)
    quarterlies: tuple[Any, ...] = ()  # PaperQuarterly (exchange.paper.quarterly)

    def __post_init__(self) -> None:
        for name in ("spot_maker_fee", "spot_taker_fee", "perp_maker_fee", "perp_taker_fee",
                     "liquidation_fee_rate"):
            _check_rate(name, getattr(self, name))
        for name in ("slippage_bps", "impact_k_bps", "slippage_noise_bps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v <= 10_000):
                raise InvalidInput(name, v, "basis points in [0, 10000]")
        p = self.participation
        if p is not None and not (math.isfinite(p) and 0.0 < p <= 1.0):
            raise InvalidInput("participation", p, "None or a fraction in (0, 1]")
        if not (math.isfinite(self.default_leverage) and self.default_leverage >= 1.0):
            raise InvalidInput("default_leverage", self.default_leverage, ">= 1")
        object.__setattr__(self, "default_margin_mode", MarginMode(self.default_margin_mode))
        object.__setattr__(self, "position_mode", PositionMode(self.position_mode))
        if not isinstance(self.seed, int):
            raise InvalidInput("seed", self.seed, "an int")
        if not self.instruments:
            from hedge_core.data.instruments import venue_instruments

            object.__setattr__(self, "instruments", venue_instruments(self.venue))
        object.__setattr__(self, "instruments", tuple(self.instruments))
        object.__setattr__(self, "quarterlies", tuple(self.quarterlies))
        if self.quarterlies:
            from hedge_core.exchange.paper.quarterly import PaperQuarterly, quarterly_instruments

            qs = tuple(q if isinstance(q, PaperQuarterly) else PaperQuarterly.from_dict(q) for q in self.quarterlies)
            object.__setattr__(self, "quarterlies", qs)
            object.__setattr__(self, "instruments", self.instruments + quarterly_instruments(qs, self.instruments))
        object.__setattr__(self, "brackets", {**_own_tables(self.instruments), **dict(self.brackets)})
        syms = [i.symbol for i in self.instruments]
        if len(set(syms)) != len(syms) or not syms:
            raise InvalidInput("instruments", syms, "a non-empty list of distinct symbols")

    def with_instruments(self, instruments: tuple[Instrument, ...]) -> PaperConfig:
        """This config with ``instruments`` (e.g. the store's rows of a pair) in place of the same symbols'
        committed defaults; a row this config was given explicitly (not the default) is kept. Symbols
        the config lacks are added. Relabelled with this config's venue."""
        from hedge_core.data.instruments import venue_instruments

        defaults = {i.symbol: i for i in venue_instruments(self.venue)}
        mine = {i.symbol: i for i in self.instruments}
        new = {i.symbol: replace(i, venue=self.venue) for i in instruments
               if i.symbol not in mine or mine[i.symbol] == defaults.get(i.symbol)}
        if not new:
            return self
        replaced = set(new)
        rows = tuple(new.pop(i.symbol, i) for i in self.instruments) + tuple(new.values())
        # drop the listing of a replaced row's own table (_own_tables lists the new row's); keep explicit overrides
        keep = {s: t for s, t in self.brackets.items()
                if not (s in replaced and s in mine and t == mine[s].brackets)}
        return replace(self, instruments=rows, brackets=keep)

    # ---- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "instruments":
                from hedge_core.data.instruments import instrument_to_row

                v = [instrument_to_row(i) for i in v]
            elif f.name == "brackets":
                v = {s: [[b.bracket, b.notional_floor, b.notional_cap, b.max_leverage, b.mmr, b.cum]
                         for b in tbl] for s, tbl in v.items()}
            elif isinstance(v, (MarginMode, PositionMode)):
                v = v.value
            elif f.name == "quarterlies":
                v = [q.to_dict() for q in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PaperConfig:
        d = dict(d)
        from hedge_core.data.instruments import instrument_from_row

        d["instruments"] = tuple(instrument_from_row(i, where=f"paper.instruments[{k}]")
                                 for k, i in enumerate(d["instruments"]))
        d["brackets"] = {s: tuple(Bracket(int(r[0]), *map(float, r[1:])) for r in tbl)
                         for s, tbl in d.get("brackets", {}).items()}
        return cls(**d)

