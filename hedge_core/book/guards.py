"""Book-level guards: limits on the whole book, checked on every book refresh.

Thresholds are inclusive like the hedge guards (``hedge_core.engine.guards``): a value AT the
limit fires. A limit left ``None`` is off. What a firing does is the runner's business
(:mod:`hedge_core.book.monitor`): it records a ``guard_firings`` row (hedge id ``book``), alerts,
marks the runner DEGRADED and BLOCKS NEW ENTRIES on the hedges it concerns. Each limit has an
action (``<name>_action``, :data:`BOOK_ACTIONS`): ``block_entries`` (the default) trades nothing;
``flatten`` also flattens the hedges it concerns, once per episode, through the operator's per-hedge
flatten (the kill switch of the control API and the panel), never through an order path of its own.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hedge_core.book.model import BookSnapshot
from hedge_core.errors import InvalidInput

__all__ = ["BOOK_ACTIONS", "BookAction", "BookLimits", "BookVerdict", "check_book", "load_limits"]

#: What a firing book guard does (``<name>_action`` in book_limits.toml). ``block_entries``: new entries of the
#: hedges it concerns are blocked, nothing is traded; ``flatten``: the same, and every hedge it concerns that is
#: not finished or already closing gets the operator's FLATTEN (kill switch: latched) once per episode.
#: No ``reduce``: the runner has no operator command that cuts a hedge partly.
BookAction = Literal["block_entries", "flatten"]
BOOK_ACTIONS: tuple[str, ...] = ("block_entries", "flatten")


class BookLimits(BaseModel):
    """Book limits (quote amounts, all optional) and the VaR settings.

    ``max_gross_exposure``: sum of every leg's |notional| over the book; ``max_venue_gross``: the
    same per venue account; ``max_asset_net_delta``: |net delta x price| per asset;
    ``var_limit``: the book's VaR (the larger of historical and parametric); ``daily_loss_limit``:
    the book's PnL since the start of the UTC day at or below ``-limit``.
    ``<name>_action`` per limit (``gross_exposure_action``, ``venue_gross_action``,
    ``asset_net_delta_action``, ``var_action``, ``daily_loss_action``): one of :data:`BOOK_ACTIONS`,
    default ``block_entries``.
    ``var_confidence`` in [0.5, 1), ``var_horizon`` bars of ``var_timeframe`` in [1, 10000],
    ``var_lookback_days`` of history in [2, 3650].
    """

    model_config = ConfigDict(extra="forbid")

    max_gross_exposure: float | None = Field(None, gt=0, allow_inf_nan=False)
    max_venue_gross: float | None = Field(None, gt=0, allow_inf_nan=False)
    max_asset_net_delta: float | None = Field(None, gt=0, allow_inf_nan=False)
    var_limit: float | None = Field(None, gt=0, allow_inf_nan=False)
    daily_loss_limit: float | None = Field(None, gt=0, allow_inf_nan=False)
    gross_exposure_action: BookAction = "block_entries"
    venue_gross_action: BookAction = "block_entries"
    asset_net_delta_action: BookAction = "block_entries"
    var_action: BookAction = "block_entries"
    daily_loss_action: BookAction = "block_entries"
    var_confidence: float = Field(0.99, ge=0.5, lt=1.0)
    var_horizon: int = Field(24, ge=1, le=10_000)
    var_timeframe: str = "1h"
    var_lookback_days: float = Field(90.0, ge=2, le=3650)

    @classmethod
    def parse(cls, data: dict[str, Any], where: str = "book limits") -> BookLimits:
        """Validate, turning the first pydantic error into :class:`InvalidInput` (field, value, rule)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            e = exc.errors()[0]
            name = ".".join(map(str, e["loc"]))
            allowed = f"one of {list(BOOK_ACTIONS)}" if name.endswith("_action") else e["msg"]
            raise InvalidInput(name, e.get("input"), allowed, where=where) from None

    def action(self, name: str) -> str:
        """The action of the limit ``name`` (a :class:`BookVerdict` name: ``var``, ``daily_loss``, ...)."""
        return str(getattr(self, f"{name}_action"))


def load_limits(path: str | Path) -> BookLimits:
    """Read ``book_limits.toml`` (a missing file: every limit off). A bad file raises InvalidInput."""
    p = Path(path)
    if not p.exists():
        return BookLimits()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("book_limits", str(exc), "valid TOML", where=str(p)) from None
    return BookLimits.parse(data, where=str(p))


@dataclass(frozen=True)
class BookVerdict:
    """One book guard firing: ``name`` (gross_exposure, venue_gross, asset_net_delta, var,
    daily_loss), ``scope`` (``book``, ``venue:NAME`` or ``asset:NAME``), the measured ``value`` and
    the ``limit`` (quote), and a sentence."""

    name: str
    scope: str
    value: float
    limit: float
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    action: str = "block_entries"  # one of BOOK_ACTIONS: what the limit's ``<name>_action`` says

    @property
    def key(self) -> str:
        """Stable condition key: one episode per guard and scope."""
        return f"book_{self.name}" + ("" if self.scope == "book" else f"[{self.scope}]")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scope": self.scope, "value": self.value, "limit": self.limit,
                "reason": self.reason, "key": self.key, "action": self.action}


def check_book(book: BookSnapshot, limits: BookLimits) -> list[BookVerdict]:
    """Every book guard that fires on ``book`` (inclusive thresholds), in a stable order, each with the
    action its limit's ``<name>_action`` sets."""
    out: list[BookVerdict] = []
    lim = limits
    if lim.max_gross_exposure is not None and book.gross >= lim.max_gross_exposure:
        out.append(BookVerdict("gross_exposure", "book", book.gross, lim.max_gross_exposure,
                               f"book gross exposure {book.gross:,.2f} >= {lim.max_gross_exposure:,.2f}"))
    if lim.max_venue_gross is not None:
        for v in book.venues:
            if v.gross >= lim.max_venue_gross:
                out.append(BookVerdict("venue_gross", f"venue:{v.venue}", v.gross, lim.max_venue_gross,
                                       f"{v.venue} gross exposure {v.gross:,.2f} >= {lim.max_venue_gross:,.2f}"))
    if lim.max_asset_net_delta is not None:
        for a in book.assets:
            dq = abs(a.delta_quote)
            if math.isfinite(dq) and dq >= lim.max_asset_net_delta:
                out.append(BookVerdict("asset_net_delta", f"asset:{a.asset}", dq, lim.max_asset_net_delta,
                                       f"{a.asset} net delta {a.delta:+g} ({a.delta_quote:+,.2f}) beyond "
                                       f"{lim.max_asset_net_delta:,.2f}", {"delta": a.delta}))
    if lim.var_limit is not None and book.var:
        v = max(float(book.var.get("historical") or 0.0), float(book.var.get("parametric") or 0.0))
        if v >= lim.var_limit:
            out.append(BookVerdict("var", "book", v, lim.var_limit,
                                   f"book VaR {v:,.2f} ({book.var.get('confidence')}, {book.var.get('horizon')} "
                                   f"bars) >= {lim.var_limit:,.2f}"))
    if lim.daily_loss_limit is not None and book.day_pnl <= -lim.daily_loss_limit:
        out.append(BookVerdict("daily_loss", "book", book.day_pnl, -lim.daily_loss_limit,
                               f"book PnL today {book.day_pnl:,.2f} <= -{lim.daily_loss_limit:,.2f}"))
    return [replace(v, action=lim.action(v.name)) for v in out]
