"""What the Overview, Hedge detail and Risk pages show: pure functions of runner answers and ledger rows.

Inputs are the runner's hedge summaries (``GET /hedges``: dicts, see
:meth:`hedge_core.runner.hedge.HedgeTask.summary`), its health (``GET /health``) and ledger frames
read from the store (``hedge_runs``, ``transitions``, ``fills``, ``funding_payments``...). No I/O.

Units: quantities base, money quote (USDT), prices quote/base, ratios dimensionless, distances
fractions of the mark price. PnL signs: + is a gain; fees are shown as a positive cost and
subtracted in ``pnl``; funding + is received.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.errors import InvalidInput

__all__ = ["OVERVIEW_COLUMNS", "overview_table", "totals", "HealthView", "health_view", "legs_table",
           "timeline_table", "risk_table", "pnl_series", "StartRequest", "validate_start",
           "live_confirmation_phrase", "ACTIVE_STATES", "is_active", "commands_for", "hedge_window", "replay_options"]

ACTIVE_STATES = frozenset({"ANALYZING_MARKET", "OPENING_SPOT_POSITION", "OPENING_FUTURES_HEDGE",
                           "MONITORING_POSITIONS", "REBALANCING", "CLOSING_POSITIONS", "ERROR", "PAUSED"})
OVERVIEW_COLUMNS = ["hedge_id", "pnl", "state", "mode", "degraded", "pair", "funding", "fees", "price_pnl", "delta",
                    "hedge_ratio", "target_ratio", "drift", "ltv", "ltv_band", "params", "status", "running"]
MODES = ("paper", "recommend", "live")


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def is_active(state: Any) -> bool:
    return str(state) in ACTIVE_STATES


def commands_for(state: Any) -> list[str]:
    """Operator commands that do something in ``state``, read from the engine's transition table
    (``pause``, ``resume``, ``rebalance_now``, ``stop``): a COMPLETED hedge offers none.

    ``stop`` closes both legs: the engine's FLATTEN (or, while monitoring, its exit) transition.
    """
    from hedge_core.engine.states import TRANSITIONS, State, Trigger

    try:
        st_ = State(str(state))
    except ValueError:
        return []
    legal = {t for (s_, t) in TRANSITIONS if s_ is st_}
    out = []
    if Trigger.PAUSE in legal:
        out.append("pause")
    if Trigger.RESUME_FLAT in legal or Trigger.RESUME_HEDGED in legal:
        out.append("resume")
    if Trigger.REBALANCE_NOW in legal:
        out.append("rebalance_now")
    if Trigger.FLATTEN in legal or Trigger.EXIT_SIGNAL in legal:
        out.append("stop")
    return out


def overview_table(summaries: Sequence[Mapping[str, Any]], runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per hedge: the runner's live hedges first, then journaled runs it does not hold.

    Columns: see ``OVERVIEW_COLUMNS``. ``running`` is True for hedges held by the runner. Runs from
    ``hedge_runs`` that the runner does not hold show their last journaled state with no live figures;
    backtests (mode 'backtest') are left out.
    """
    rows = []
    seen = set()
    for s in summaries:
        loan = s.get("loan") or {}
        rows.append({
            "hedge_id": s.get("hedge_id"), "mode": s.get("mode", ""), "state": s.get("state", s.get("status", "")),
            "status": s.get("status", ""), "pair": f"{s.get('spot_symbol', '')} / {s.get('perp_symbol', '')}",
            "params": s.get("params", ""), "delta": _num(s.get("delta")), "hedge_ratio": _num(s.get("hedge_ratio")),
            "target_ratio": _num(s.get("target_ratio")), "drift": _num(s.get("drift")), "pnl": _num(s.get("pnl")),
            "price_pnl": _num(s.get("price_pnl")), "funding": _num(s.get("funding")), "fees": _num(s.get("fees")),
            "ltv": _num(loan.get("ltv")), "ltv_band": loan.get("band") or "", "running": True,
            "degraded": "; ".join(f"{k}: {v}" for k, v in (s.get("degraded") or {}).items())})
        seen.add(s.get("hedge_id"))
    if runs is not None and len(runs):
        r = runs[~runs["hedge_id"].isin(seen) & (runs["mode"] != "backtest")]
        if "started_at" in r.columns:
            r = r.sort_values("started_at", ascending=False)
        for x in r.to_dict("records"):
            pv = x.get("params_version")
            params = f"{x.get('params_name')}@{int(pv)}" if x.get("params_name") and pv == pv and pv is not None \
                else "inline"
            rows.append({"hedge_id": x["hedge_id"], "mode": x.get("mode", ""), "state": x.get("state", ""),
                         "status": "not running", "pair": f"{x.get('spot_symbol', '')} / {x.get('perp_symbol', '')}",
                         "params": params, "delta": math.nan, "hedge_ratio": math.nan, "target_ratio": math.nan,
                         "drift": math.nan, "pnl": math.nan, "price_pnl": math.nan, "funding": math.nan,
                         "fees": math.nan, "ltv": math.nan, "ltv_band": "", "running": False, "degraded": ""})
    return pd.DataFrame(rows, columns=OVERVIEW_COLUMNS)


def totals(table: pd.DataFrame) -> dict[str, float]:
    """Sums over the runner's hedges (quote) and counts: hedges, active, live."""
    live = table[table["running"]] if len(table) else table
    out = {k: float(np.nansum(live[k].to_numpy(dtype="float64"))) if len(live) else 0.0
           for k in ("pnl", "price_pnl", "funding", "fees")}
    out["hedges"] = float(len(table))
    out["active"] = float(sum(is_active(s) for s in live["state"])) if len(live) else 0.0
    out["live_mode"] = float((live["mode"] == "live").sum()) if len(live) else 0.0
    return out


@dataclass(frozen=True)
class HealthView:
    ok: bool
    label: str  # one line for the sidebar / overview
    heartbeat_age_s: float
    hedges: int
    degraded: bool = False  # some hedge or venue account is DEGRADED (see runner.condition)


def health_view(health: Mapping[str, Any] | None, *, stale_after_s: float | None = None) -> HealthView:
    """Runner health in one line. ``None`` (no runner) is not ok."""
    if not health:
        return HealthView(False, "runner not running", math.nan, 0)
    age = _num(health.get("heartbeat_age_s"))
    limit = stale_after_s if stale_after_s is not None else _num(health.get("dms_timeout_s"))
    ok = bool(health.get("ok", True)) and not (age > limit)
    stopping = " (stopping)" if health.get("stopping") else ""
    degraded = health.get("degraded") or {}
    worry = (" — DEGRADED: " + "; ".join(f"{who} {key}" for who, conds in degraded.items() for key in conds)) \
        if degraded else ""
    label = (f"runner pid {health.get('pid')}: heartbeat {age:.1f} s ago, {int(health.get('hedges', 0))} hedges"
             f"{stopping}{worry}" if ok else
             f"runner pid {health.get('pid')} STALE: heartbeat {age:.1f} s ago (limit {limit:g} s){worry}")
    return HealthView(ok, label, age, int(health.get("hedges", 0) or 0), bool(degraded))


def legs_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The two legs of one hedge: symbol, signed quantity (base), entry and last price, notional (quote).

    The perp row names the contract the hedge leg is on (``leg_contract``: a dated future after a calendar roll);
    during a roll a third row ``roll`` shows what the contract it moves to holds (docs/calendar-roll.md)."""
    rows = []
    for leg, qty, entry, px in (("spot", "spot_qty", "spot_entry", "spot_price"),
                                ("perp", "perp_qty", "perp_entry", "mark_price")):
        q, p = _num(summary.get(qty)), _num(summary.get(px))
        sym = (summary.get("leg_contract") or summary.get("perp_symbol", "")) if leg == "perp" else summary.get("spot_symbol", "")
        rows.append({"leg": leg, "symbol": sym, "qty": q,
                     "entry_price": _num(summary.get(entry)), "price": p,
                     "notional": abs(q) * p if q == q and p == p else math.nan})
    roll = summary.get("roll")
    if isinstance(roll, Mapping):
        rows.append({"leg": "roll", "symbol": roll.get("to", ""), "qty": _num(roll.get("held_to")),
                     "entry_price": math.nan, "price": math.nan, "notional": math.nan})
    return pd.DataFrame(rows)


def timeline_table(transitions: pd.DataFrame) -> pd.DataFrame:
    """State timeline with reasons, newest first: ts, from_state, to_state, trigger, reason."""
    cols = ["ts", "from_state", "to_state", "trigger", "reason"]
    if transitions is None or not len(transitions):
        return pd.DataFrame(columns=cols)
    t = transitions.rename(columns={"trigger_name": "trigger"})
    t = t.sort_values(["ts", "seq"] if "seq" in t.columns else ["ts"], ascending=False)
    return t[[c for c in cols if c in t.columns]].reset_index(drop=True)


def risk_table(summaries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per hedge: liquidation price and distance of the perp against its guards, daily loss used, loan/LTV.

    ``daily_loss_used`` = max(0, -day PnL) / daily_loss_limit (fraction; NaN when the guard is off).
    ``liq_status``: 'close' when the distance is at or below the close guard, 'reduce' at or below
    the reduce guard, else 'ok' ('' when flat).
    """
    rows = []
    for s in summaries:
        dist = _num(s.get("liq_distance"))
        close_at, reduce_at = _num(s.get("liq_distance_close")), _num(s.get("liq_distance_reduce"))
        status = "" if dist != dist else ("close" if dist <= close_at else "reduce" if dist <= reduce_at else "ok")
        limit = _num(s.get("daily_loss_limit"))
        day = _num(s.get("day_pnl"))
        used = max(0.0, -day) / limit if limit == limit and limit > 0 and day == day else math.nan
        loan = s.get("loan") or {}
        rows.append({"hedge_id": s.get("hedge_id"), "mode": s.get("mode"), "state": s.get("state"),
                     "perp": s.get("perp_symbol"), "perp_qty": _num(s.get("perp_qty")), "mark": _num(s.get("mark_price")),
                     "liq_price": _num(s.get("liq_price")), "liq_distance": dist, "reduce_at": reduce_at,
                     "close_at": close_at, "liq_status": status, "day_pnl": day, "daily_loss_limit": limit,
                     "daily_loss_used": used, "loan": _num(loan.get("outstanding")),
                     "collateral_qty": _num(loan.get("collateral_qty")), "ltv": _num(loan.get("ltv")),
                     "ltv_band": loan.get("band") or "", "reserve_deployed": _num(loan.get("reserve_deployed")),
                     "reserve_left": _num(loan.get("reserve_left")), "guards": ", ".join(s.get("active_guards") or []),
                     "kill_latched": bool(s.get("kill_latched"))})
    return pd.DataFrame(rows)


# ---- PnL over time from ledger flows -----------------------------------------------------------------


def pnl_series(flows: pd.DataFrame, funding: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Mark-to-market PnL of a hedge over time, split into price, funding and fees.

    Parameters
    ----------
    flows : DataFrame
        :meth:`Store.fill_flows` rows (per leg, optionally bucketed): ts, leg ('spot'|'perp'), qty, cash, fees.
    funding : DataFrame
        ``funding_payments`` rows: ts, amount (quote, + received).
    prices : DataFrame
        Index UTC time; columns ``spot`` and ``perp`` (the perp's mark or close): the valuation grid.

    Returns
    -------
    DataFrame
        Indexed like ``prices``: spot_qty, perp_qty, delta (base), hedge_ratio (|perp notional| /
        spot notional), price_pnl = cash + qty x price summed over legs, funding (cumulative),
        fees (cumulative, a cost >= 0), pnl = price_pnl + funding - fees.
    """
    idx = prices.index
    out = pd.DataFrame(index=idx)
    price_pnl = np.zeros(len(idx))
    for leg in ("spot", "perp"):
        f = flows[flows["leg"] == leg] if len(flows) else flows
        q = _cum_at(f, "qty", idx)
        c = _cum_at(f, "cash", idx)
        px = prices[leg].to_numpy(dtype="float64")
        out[f"{leg}_qty"] = q
        price_pnl = price_pnl + c + np.where(q != 0.0, q * px, 0.0)
    fees = _cum_at(flows, "fees", idx)
    fund = _cum_at(funding.rename(columns={"amount": "amount"}), "amount", idx) if funding is not None and len(funding) \
        else np.zeros(len(idx))
    out["delta"] = out["spot_qty"] + out["perp_qty"]
    spot_notional = out["spot_qty"].abs() * prices["spot"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["hedge_ratio"] = np.where(spot_notional > 0, (out["perp_qty"].abs() * prices["perp"]) / spot_notional,
                                      np.nan)
    out["price_pnl"] = price_pnl
    out["funding"] = fund
    out["fees"] = fees
    out["pnl"] = out["price_pnl"] + out["funding"] - out["fees"]
    return out


def _cum_at(rows: pd.DataFrame, col: str, idx: pd.DatetimeIndex) -> np.ndarray:
    """Cumulative sum of ``rows[col]`` over rows with ts <= each index time."""
    if rows is None or not len(rows) or not len(idx):
        return np.zeros(len(idx))
    r = rows.sort_values("ts")
    ts = pd.DatetimeIndex(pd.to_datetime(r["ts"], utc=True)).as_unit("ns").asi8
    cum = np.cumsum(r[col].fillna(0.0).to_numpy(dtype="float64"))
    pos = np.searchsorted(ts, pd.DatetimeIndex(idx).tz_convert("UTC").as_unit("ns").asi8, side="right")
    return np.where(pos > 0, cum[np.maximum(pos - 1, 0)], 0.0)


# ---- the start form ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartRequest:
    """A validated start request: what the panel sends to ``POST /hedges``."""

    params: str
    mode: str
    notional: float
    spot_symbol: str
    perp_symbol: str
    confirm_live: bool = False

    def body(self) -> dict[str, Any]:
        out = {"params": self.params, "mode": self.mode, "notional": self.notional, "spot_symbol": self.spot_symbol,
               "perp_symbol": self.perp_symbol, "created_from": "panel"}
        if self.mode == "live":
            out["confirm_live"] = self.confirm_live
        return out


def live_confirmation_phrase(ref: str) -> str:
    """What the operator must type to start ``ref`` in live mode."""
    return f"LIVE {ref}"


def validate_start(ref: str | None, status: str | None, mode: str, size: Any, spot_symbol: str, *,
                   size_max: float = 1e9, typed_confirmation: str = "") -> StartRequest:
    """Check the start form; raise :class:`InvalidInput` naming the first bad field. Pure.

    Rules: a parameter set version is chosen; ``mode`` in paper/recommend/live; ``size`` (quote) a
    finite number in (0, size_max]; a ccxt spot symbol ``BASE/QUOTE``; live needs the version
    promoted to ``live`` (the promotion gate) and the typed phrase :func:`live_confirmation_phrase`.
    """
    if not ref:
        raise InvalidInput("parameter set", ref, "an exported version (Parameter sets page, or hedge params export)")
    if mode not in MODES:
        raise InvalidInput("mode", mode, f"one of {MODES}")
    try:
        n = float(size)
    except (TypeError, ValueError):
        raise InvalidInput("size", size, f"a number of quote units in (0, {size_max:g}]") from None
    if not math.isfinite(n) or n <= 0 or n > size_max:
        raise InvalidInput("size", size, f"a number of quote units in (0, {size_max:g}]")
    base, sep, quote = (spot_symbol or "").partition("/")
    if not sep or not base or not quote or ":" in quote:
        raise InvalidInput("spot symbol", spot_symbol, "a ccxt spot symbol like BTC/USDT")
    confirm = False
    if mode == "live":
        if status != "live":
            raise InvalidInput("mode", "live", f"a parameter set promoted to live; {ref} is {status or 'draft'} "
                               "(promote it on the Parameter sets page after a completed paper run)")
        if typed_confirmation.strip() != live_confirmation_phrase(ref):
            raise InvalidInput("confirmation", typed_confirmation,
                               f"the exact text {live_confirmation_phrase(ref)!r}: live mode trades real money")
        confirm = True
    return StartRequest(ref, mode, n, spot_symbol, f"{spot_symbol}:{quote}", confirm)


_PAD = pd.Timedelta(hours=12)
_DEFAULT_WINDOW = pd.Timedelta(days=7)


def hedge_window(transitions: pd.DataFrame, last_ts: Any, data_first: Any, data_last: Any, *,
                 pad: pd.Timedelta = _PAD, default: pd.Timedelta = _DEFAULT_WINDOW,
                 ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Chart window [start, end) of a hedge on its market data.

    A replayed paper hedge lives on the data clock, but its START row carries the wall clock: times
    outside the stored data are ignored. Padded by ``pad`` and clamped to the data; the last
    ``default`` of data when nothing falls inside.
    """
    first, last = pd.Timestamp(data_first), pd.Timestamp(data_last)
    ts = [] if transitions is None or not len(transitions) else list(pd.to_datetime(transitions["ts"], utc=True))
    if last_ts is not None and str(last_ts) not in ("", "None", "NaT"):
        ts.append(pd.Timestamp(last_ts))
    inside = [t for t in ts if first <= t <= last + pd.Timedelta(days=1)]
    if not inside:
        return max(first, last - default), last + pd.Timedelta(hours=1)
    return max(first, min(inside) - pad), min(last + pd.Timedelta(hours=1), max(inside) + pad)


def replay_options(speed: Any, start_text: str) -> dict[str, Any]:
    """Paper replay fields of a start request: ``speed`` (data seconds per wall second, in (0, 1e6])
    and an optional ``start`` (UTC ISO time). InvalidInput names the bad field."""
    try:
        v = float(speed)
    except (TypeError, ValueError):
        raise InvalidInput("replay speed", speed, "a number of data seconds per wall second in (0, 1e6]") from None
    if not (math.isfinite(v) and 0 < v <= 1e6):
        raise InvalidInput("replay speed", speed, "a number of data seconds per wall second in (0, 1e6]")
    out: dict[str, Any] = {"speed": v}
    text = (start_text or "").strip()
    if text:
        try:
            t = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise InvalidInput("replay start", text, "a UTC time like 2024-01-01T05:00Z, or empty") from None
        out["start"] = (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()
    return out
