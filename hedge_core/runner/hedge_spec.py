"""How to run one hedge: :class:`HedgeSpec` (validated, stored in ``hedge_runs.info``).

Split out of :mod:`hedge_core.runner.hedge` (which re-exports it) so the spec can be read without the
running machinery.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = ["PAPER_VENUE_FIELDS", "HedgeSpec"]

#: The PaperConfig fields ``HedgeSpec.paper_venues`` may set per paper venue.
PAPER_VENUE_FIELDS = ("spot_maker_fee", "spot_taker_fee", "perp_maker_fee", "perp_taker_fee", "slippage_bps",
                      "impact_k_bps")


class HedgeSpec(BaseModel):
    """How to run one hedge (stored in ``hedge_runs.info``; never holds a secret).

    ``recovery``: after a crash/restart, ``resume`` the hedge from the journal or ``flatten`` it.
    ``on_shutdown``: on SIGTERM / ``runner stop``, ``keep`` the positions (paused for new
    entries; resumed on the next start) or ``flatten`` them before exiting.
    ``feed``: ``replay`` (store data at ``speed`` x real time: the hedge runs on the replay
    clock), ``ticker`` (poll the venue's tickers every ``poll_s``; live default) or ``bars``
    (closed bars from the venue: websockets where offered, REST polling otherwise). A paper
    request without a feed gets ``bars`` when the venue answers and ``replay`` when offline or
    asked for (see :func:`hedge_core.runner.clock.resolve_paper_feed`).
    ``reconcile_s`` (0 < s <= 3600, default 60), ``records_poll_s`` (0 < s <= 3600, default 30),
    ``on_mismatch`` (``hold`` | ``rehedge`` | ``flatten``, default ``hold``): live hedges only —
    the continuous reconciliation with the venue's records and its policy (docs/live-records.md).
    """

    model_config = ConfigDict(extra="forbid")

    hedge_id: str
    params_name: str | None = None
    params_version: int | None = None
    params_inline: dict[str, Any] | None = None
    mode: Literal["paper", "live", "recommend"] = "paper"
    venue: str = "binance"
    # legs on two venues (paper, live, recommend; docs/cross-venue.md): the perp leg's venue; None = ``venue``.
    # ``balances['spot']`` funds the spot wallet on ``venue``, ``balances['perp']`` the futures wallet on it.
    # "best" (or None with an xcarry set allowing several perp venues): chosen when the hedge starts among the
    # set's allowed venues by walked book price and fee (runner.best_perp); the runner then stores the chosen
    # venue here and the scores in ``perp_venue_choice`` (written by the runner, not by a caller). Paper: the perp
    # wallet on venue v is funded from ``balances['perp.v']`` when given, else ``balances['perp']``
    # (runner.best_fallback.leg_balances); a paper replay re-chooses at each entry from flat (runner.best_entry).
    perp_venue: str | None = None
    perp_venue_choice: dict[str, Any] | None = None
    # live/recommend best execution (runner.best_entry_live): seconds between two re-rankings of the allowed perp
    # venues at flat entries (each reads every venue's book and wallet), in [0, 86400]; 0 = at every update on
    # which an entry is near. Paper replays re-rank at every such update (no venue is asked anything).
    best_recheck_s: float = 60.0
    # paper: per-venue settings of the paper venues ({venue: {field: value}}), fields among PAPER_VENUE_FIELDS
    # (fees as fractions, slippage and impact in bps); unnamed fields keep PaperConfig's defaults
    paper_venues: dict[str, dict[str, float]] = Field(default_factory=dict)
    # "perp_perp": the first leg is a PERP on ``venue`` too (two perp legs of ``perp_symbol``, docs/cross-venue.md);
    # ``balances['spot']`` then funds the FUTURES wallet on ``venue`` (paper). Paper (feed replay), live and recommend
    # (feed ticker: exchange.routed_pair_live, one keyed account per venue).
    legs: Literal["spot_perp", "perp_perp"] = "spot_perp"
    spot_symbol: str = "BTC/USDT"
    perp_symbol: str = "BTC/USDT:USDT"
    feed: Literal["replay", "ticker", "bars"] = "replay"
    data_venue: str | None = None
    timeframe: str = "1h"
    start: str | None = None
    end: str | None = None
    speed: float | None = Field(3600.0, gt=0)
    poll_s: float = Field(1.0, gt=0, le=3600)
    recovery: Literal["resume", "flatten"] = "resume"
    on_shutdown: Literal["keep", "flatten"] = "keep"
    balances: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}})
    notional: float | None = Field(None, gt=0, le=1e9)  # size override of the set's notional (quote)
    paper_participation: float | None = Field(None, gt=0, le=1)
    paper_save_every_event: bool = True
    created_from: str = "api"
    # live: how often journal and venue are compared (s), how often the venue's funding income is read
    # (s), and what a mismatch does: hold (no new orders until an operator resumes), rehedge (book the
    # venue's missing fills, the engine re-hedges the difference) or flatten. See docs/live-records.md.
    reconcile_s: float = Field(60.0, gt=0, le=3600)
    records_poll_s: float = Field(30.0, gt=0, le=3600)
    on_mismatch: Literal["hold", "rehedge", "flatten"] = "hold"
    # fresh prices and slippage (runner.freshness): ages against the venue's own timestamps
    max_ticker_age_s: float = 10.0  # seconds, in (0, 3600]
    max_bar_age_bars: float = 2.0  # bar lengths after the bar's close, in (0, 100]
    max_slippage_bps: float | None = 50.0  # alert above this distance from the decision price, (0, 10000]; None = off
    # risk second opinion (hedge_core.advice, docs/risk-advisor.md): may its "act" opinions pause or flatten
    # this hedge (through the engine's own commands and guards)? False = it only advises and alerts.
    advisor_may_act: bool = False
    # paper only: a simulated dated future the paper venue lists (docs/calendar-roll.md), e.g.
    # {"symbol": "BTC/USDT:USDT-261225", "expiry": "2026-12-25T08:00Z", "basis_apr": 0.08}: priced from the
    # spot at that annualised basis, so a hedge whose parameters enable ``roll`` can move its leg onto it
    paper_quarterly: dict[str, Any] | None = None

    @field_validator("best_recheck_s")
    @classmethod
    def _best_recheck(cls, v: float) -> float:
        if isinstance(v, bool) or not (math.isfinite(float(v)) and 0.0 <= float(v) <= 86_400.0):
            raise ValueError(f"best_recheck_s={v!r}: expected seconds in [0, 86400] between two re-rankings of the "
                             "perp venues at flat entries (0 = at every update on which an entry is near)")
        return float(v)

    @field_validator("paper_quarterly")
    @classmethod
    def _quarterly(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        from hedge_core.errors import InvalidInput
        from hedge_core.exchange.paper.quarterly import PaperQuarterly

        try:
            return PaperQuarterly.from_dict(v).to_dict()
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _perp_venue(self) -> HedgeSpec:
        # any mode (paper, live, recommend; docs/cross-venue.md); a venue is a lowercase ccxt id
        if self.perp_venue is not None and (not self.perp_venue or self.perp_venue != self.perp_venue.lower()):
            raise ValueError(f"perp_venue={self.perp_venue!r}: expected a lowercase ccxt id such as 'bybit', or 'best'")
        if self.perp_venue_choice is not None and self.perp_venue_choice.get("venue") != self.perp_venue:
            raise ValueError(f"perp_venue_choice: written by the runner for the venue it chose; it names "
                             f"{self.perp_venue_choice.get('venue')!r}, perp_venue is {self.perp_venue!r}")
        for v, cfg in self.paper_venues.items():
            if not v or v != v.lower():
                raise ValueError(f"paper_venues: {v!r}: expected lowercase venue ids")
            bad = sorted(set(cfg) - set(PAPER_VENUE_FIELDS))
            if bad:
                raise ValueError(f"paper_venues.{v}: {bad} not settable: expected fields among {list(PAPER_VENUE_FIELDS)}")
            for k, x in cfg.items():  # PaperConfig's ranges: fees a fraction in [0, 0.1], slippage/impact bps
                hi = 10_000.0 if k.endswith("_bps") else 0.1
                if not (math.isfinite(x) and 0.0 <= x <= hi):
                    raise ValueError(f"paper_venues.{v}.{k}={x!r}: expected a number in [0, {hi:g}]"
                                     + (" basis points" if k.endswith("_bps") else " (fraction of notional)"))
        if self.legs == "perp_perp":
            if not self.perp_venue or self.perp_venue in (self.venue, "best"):
                raise ValueError(f"legs='perp_perp' with perp_venue={self.perp_venue!r}: expected a second venue other "
                                 f"than venue={self.venue!r} (a perp on each; 'best' is chosen for a spot first leg only)")
            # paper: a replay or each venue's live bars; live/recommend: each venue's own ticker or bars
            want = ("replay", "bars") if self.mode == "paper" else ("ticker", "bars")
            if self.feed not in want:
                raise ValueError(f"legs='perp_perp' with mode={self.mode!r}, feed={self.feed!r}: expected feed "
                                 f"{' or '.join(repr(w) for w in want)} for mode {self.mode!r} (paper: 'replay' or "
                                 "'bars'; live and recommend: 'ticker' or 'bars', the first leg priced at its own "
                                 "venue)")
        return self

    @property
    def perp_pair(self) -> bool:
        """True when both legs are perps (``legs = "perp_perp"``)."""
        return self.legs == "perp_perp"

    @property
    def leg_venues(self) -> tuple[str, str]:
        """(spot leg venue, perp leg venue)."""
        return self.venue, self.perp_venue or self.venue

    @field_validator("max_ticker_age_s", "max_bar_age_bars", "max_slippage_bps")
    @classmethod
    def _freshness_range(cls, v: float | None, info: ValidationInfo) -> float | None:
        hi = {"max_ticker_age_s": (3600.0, "seconds"), "max_bar_age_bars": (100.0, "bars"),
              "max_slippage_bps": (10_000.0, "basis points")}[info.field_name]
        if v is None and info.field_name == "max_slippage_bps":
            return v
        if v is None or not (math.isfinite(v) and 0 < v <= hi[0]):
            raise ValueError(f"{info.field_name}={v!r}: expected a number in (0, {hi[0]:g}] {hi[1]}")
        return float(v)
