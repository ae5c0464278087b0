"""The preflight of a hedge whose perp venue was chosen by best execution: down the ranking on a refusal.

:func:`hedge_core.runner.best_perp.choose_perp_venue` ranks the set's allowed perp venues by the all-in quote
flow of the entry. The preflight (:mod:`hedge_core.runner.preflight`) then checks both legs at the chosen
venue. When it refuses the start because of THAT venue's leg (today: the perp margin free on that venue is
short of the size, an :class:`~hedge_core.errors.InvalidInput` whose ``where`` is ``"venue <perp venue>"``:
no money moves between venues, :func:`hedge_core.exchange.routed.leg_venue_of_binding`), the next venue of
the ranking that could fill the size is tried, then the next. Each refusal is kept in the choice record
(``perp_venue_choice["refused"]``: venue and the preflight's reason) and journaled when the hedge starts as
a :data:`REFUSED` transitions row (state unchanged), before the :data:`~hedge_core.runner.best_perp.TRIGGER`
row of the venue finally used. A refusal on the spot leg, or any other error, is raised as it is: another
perp venue would not change it. When every ranked venue is refused, InvalidInput lists each one's reason and
nothing is written.

Balances are per venue: a paper hedge's perp wallet on venue ``v`` is funded from ``balances["perp.v"]``
when given, else ``balances["perp"]`` (:func:`leg_balances`); a live venue's are its own account's.

Known limit: the preflight of a refused venue ran with ``apply`` like any refused start, so a live venue
that was refused may have had its position mode, margin mode and leverage set for the symbol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.errors import InvalidInput

if TYPE_CHECKING:
    from hedge_core.exchange.base import ExchangeAdapter
    from hedge_core.params.models import StrategyParamsBase
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.runner.preflight import PreflightReport
    from hedge_core.runner.supervisor import Supervisor

__all__ = ["REFUSED", "choice_transitions", "leg_balances", "preflight_start", "ranked_venues"]

#: ``trigger_name`` of the journal's transitions row of a chosen venue the preflight refused (state unchanged).
REFUSED = "PERP_VENUE_REFUSED"


def leg_balances(spec: HedgeSpec, leg: str, venue: str) -> dict[str, float]:
    """A paper leg's starting balances on ``venue`` (currency -> amount): ``balances["<leg>.<venue>"]`` when
    the hedge names that venue's own, else ``balances["<leg>"]`` (empty when neither)."""
    own = spec.balances.get(f"{leg}.{venue}")
    return dict(own if own is not None else spec.balances.get(leg, {}))


def ranked_venues(record: Mapping[str, Any]) -> list[str]:
    """The venues of a choice record that could fill the size, best first (the chosen one first)."""
    out = [str(record["venue"])]
    out += [str(s["venue"]) for s in record.get("ranking", []) if not s.get("reason") and s["venue"] not in out]
    return out


def _on_venue(spec: HedgeSpec, record: Mapping[str, Any], venue: str, refused: list[dict[str, str]]) -> HedgeSpec:
    """``spec`` with its perp leg on ``venue`` of the ranking (that venue's fee in the record) and the refusals."""
    fee = next(s["taker_fee"] for s in record["ranking"] if s["venue"] == venue)
    rec = {**record, "venue": venue, "taker_fee": float(fee), "refused": list(refused)}
    if venue != record["venue"]:
        rec.setdefault("first_choice", record["venue"])
    return spec.model_copy(update={"perp_venue": venue, "perp_venue_choice": rec})


def _refused_here(exc: InvalidInput, venue: str) -> bool:
    """Did the preflight refuse because of the perp leg on ``venue`` (its margin)?"""
    return exc.where == f"venue {venue}"


async def _one(sup: Supervisor, spec: HedgeSpec, params: StrategyParamsBase, *, confirm_live: bool,
               apply: bool) -> tuple[ExchangeAdapter, PreflightReport]:
    from hedge_core.runner.preflight import discard_adapter, preflight_for_spec

    adapter = sup._adapter_for(spec, confirm_live=confirm_live)
    try:
        return adapter, await preflight_for_spec(sup, spec, params, adapter, apply=apply)
    except BaseException:
        await discard_adapter(adapter)
        raise


async def preflight_start(sup: Supervisor, spec: HedgeSpec, params: StrategyParamsBase, *, confirm_live: bool,
                          apply: bool) -> tuple[HedgeSpec, StrategyParamsBase, ExchangeAdapter, PreflightReport]:
    """Build the hedge's adapter and run its preflight; for a best-execution choice, down the ranking.

    Returns ``(spec, params, adapter, report)`` of the venue used (``spec.perp_venue_choice`` then carries
    ``refused``, the venues refused before it). The adapter of a refused venue is discarded (a paper venue
    unsaved). Raises the preflight's InvalidInput (nothing written) when the refusal is not the perp venue's,
    or InvalidInput on ``perp_venue`` listing every ranked venue's reason when all are refused.
    """
    record = spec.perp_venue_choice
    if not record:
        adapter, report = await _one(sup, spec, params, confirm_live=confirm_live, apply=apply)
        return spec, params, adapter, report
    refused: list[dict[str, str]] = []
    for venue in ranked_venues(record):
        s = _on_venue(spec, record, venue, refused)
        p = sup._params_for(s)
        try:
            adapter, report = await _one(sup, s, p, confirm_live=confirm_live, apply=apply)
        except InvalidInput as exc:
            if not _refused_here(exc, venue):
                raise
            refused.append({"venue": venue, "reason": str(exc)})
            continue
        return s, p, adapter, report
    raise InvalidInput("perp_venue", "best", "an allowed perp venue that passes the preflight; refused: "
                       + "; ".join(f"{r['venue']}: {r['reason']}" for r in refused), where="start")


def choice_transitions(record: Mapping[str, Any], ts: pd.Timestamp, state: str) -> list[dict[str, Any]]:
    """The journal's transitions rows of a choice: one :data:`REFUSED` row per venue the preflight refused (in
    ranking order), then the :data:`~hedge_core.runner.best_perp.TRIGGER` row of the venue used."""
    from hedge_core.runner.best_perp import choice_transition

    rows = [{"ts": ts, "from_state": state, "to_state": state, "trigger_name": REFUSED,
             "reason": f"perp venue {r['venue']} refused by the preflight, next venue of the ranking tried: "
                       f"{r['reason']}"} for r in record.get("refused", []) or []]
    return rows + [choice_transition(record, ts, state)]
