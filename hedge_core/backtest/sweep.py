"""Parameter sweeps: grid and random search, walk-forward, on local processes or a Dask cluster.

Any field of a parameter set can be swept by its DOTTED PATH into the nested pydantic model
(``"min_funding_rate"``, ``"rebalance.drift_threshold"``, ``"exit.max_holding_hours"``). Every
point is validated by the model before anything runs: an unknown name or a bad value raises
:class:`~hedge_core.errors.InvalidInput` naming the field, the value and what is allowed.

The machinery is independent of what is evaluated: :func:`run_sweep` maps an ``evaluate(params,
payload) -> dict`` over the points. The default evaluator backtests (fast path when it accepts
the run, else the event-driven backtester) on the payload's timeline. Results come back as one
table (one row per point, in the order of the points: parameter columns, then KPI columns,
``path`` = fast/event and ``error``). They are identical whichever backend ran them (every
evaluation is deterministic and results are re-ordered by point index).

Backends: ``scheduler=None`` -> a local ``ProcessPoolExecutor`` (``workers`` processes, forked
so they inherit the payload when this process is single-threaded, else started from a fork
server with the payload sent once per worker; kept for the next sweep on the same payload
until :func:`close_pool`, another payload or the end of the process); ``scheduler="tcp://host:8786"`` (or
a ``distributed.Client``) -> the Dask cluster at that address (the payload is scattered once,
broadcast to the workers, and kept there for the next sweep through the same Client on the same
payload: pass a Client, not an address, to sweep grid after grid on one timeline); ``workers=0`` runs in-process (debugging, tiny sweeps).
Progress: a tqdm bar (``show_progress``) and/or ``progress(done, total)`` callback (the panel).
"""

from __future__ import annotations

import atexit
import itertools
import math
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from hedge_core.errors import InvalidInput

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = [
    "Payload",
    "apply_overrides",
    "best_row",
    "close_pool",
    "evaluate_backtest",
    "grid_points",
    "grid_search",
    "random_points",
    "random_search",
    "run_sweep",
    "set_path",
    "walk_forward",
]

Evaluate = Callable[[Any, Any], Mapping[str, float]]
Progress = Callable[[int, int], None]


# ---- dotted paths into nested pydantic params -----------------------------------------------------


def _fields(model: BaseModel) -> list[str]:
    return list(type(model).model_fields)


def _resolve(params: BaseModel, path: str) -> None:
    """Check that ``path`` names a field (InvalidInput naming the first wrong segment)."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("parameter", path, "a dotted field path such as 'rebalance.drift_threshold'")
    obj: Any = params
    done: list[str] = []
    for seg in path.split("."):
        if not isinstance(obj, BaseModel) or seg not in type(obj).model_fields:
            where = ".".join(done) or type(params).__name__
            allowed = _fields(obj) if isinstance(obj, BaseModel) else "no sub-fields (a plain value)"
            raise InvalidInput(path, seg, f"a field of {where}: {allowed}")
        done.append(seg)
        obj = getattr(obj, seg)


def apply_overrides(params: BaseModel, overrides: Mapping[str, Any]) -> BaseModel:
    """A new validated model with ``overrides`` (dotted path -> value) applied.

    Raises InvalidInput(field=path, value, allowed) on an unknown path or a value the model refuses; its
    ``combination`` attribute is True when the model refused the COMBINATION of values (a cross-field
    rule such as xcarry's two different venues), not one field's value.
    """
    for path in overrides:
        _resolve(params, path)
    data = params.model_dump()
    for path, value in overrides.items():
        d = data
        segs = path.split(".")
        for seg in segs[:-1]:
            d = d[seg]
        d[segs[-1]] = value
    try:
        return type(params).model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        value = overrides.get(loc, err.get("input"))
        field = loc if loc else ", ".join(overrides)
        refused = InvalidInput(field, value, err.get("msg", "a valid value"))
        refused.combination = not loc  # type: ignore[attr-defined]  # the model's cross-field rule refused it
        raise refused from None


def set_path(params: BaseModel, path: str, value: Any) -> BaseModel:
    """``apply_overrides(params, {path: value})``."""
    return apply_overrides(params, {path: value})


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of ``grid`` (path -> values), in row-major order of the paths given."""
    if not grid:
        raise InvalidInput("grid", {}, "at least one parameter with a list of values")
    for k, v in grid.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0:
            raise InvalidInput(k, v, "a non-empty list of values")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))]


def random_points(space: Mapping[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` random points. Each path maps to a list (uniform choice), or to ``{"low", "high"[, "log",
    "int"]}`` (uniform, log-uniform, integers). Seeded: same (space, n, seed) -> same points."""
    if not (isinstance(n, int) and n >= 1):
        raise InvalidInput("n", n, "an integer >= 1")
    rng = random.Random(seed)
    pts = []
    for _ in range(n):
        pt: dict[str, Any] = {}
        for k, spec in space.items():
            if isinstance(spec, Mapping):
                lo, hi = spec.get("low"), spec.get("high")
                if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo < hi):
                    raise InvalidInput(k, spec, "{'low': a, 'high': b} with a < b")
                if spec.get("log"):
                    if lo <= 0:
                        raise InvalidInput(k, spec, "log ranges need low > 0")
                    v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
                else:
                    v = rng.uniform(lo, hi)
                pt[k] = round(v) if spec.get("int") else v
            elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)) and len(spec):
                pt[k] = spec[rng.randrange(len(spec))]
            else:
                raise InvalidInput(k, spec, "a non-empty list or {'low', 'high'[, 'log', 'int']}")
        pts.append(pt)
    return pts


# ---- the default evaluator --------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """What every evaluation needs: the replay timeline and the backtest config (sent once per worker)."""

    timeline: Any
    config: Any = None
    capital: float | None = None
    prefer_fast: bool = True


def evaluate_backtest(params: StrategyParamsBase, payload: Payload) -> dict[str, float]:
    """KPIs of one backtest: fast path when it accepts the run, else the event-driven path.

    ``xcarry`` (payload timeline: a ``VenueTimelines``) and a strategy without a fast kernel
    (``strategy_for(params).fast_kernel is None``) go to
    :func:`hedge_core.backtest.xvenue_sweep.evaluate_xvenue` (xcarry: the fast path on both venues'
    models, else the cross-venue backtest; the others: the event path).
    Adds ``_fast`` = 1.0 / 0.0 (which path ran).
    """
    from hedge_core.backtest.event import BacktestConfig, run_backtest
    from hedge_core.engine.strategies import strategy_for

    if getattr(params, "strategy", None) == "xcarry" or strategy_for(params).fast_kernel is None:
        from hedge_core.backtest.xvenue_sweep import evaluate_xvenue

        return evaluate_xvenue(params, payload.timeline, payload.config, payload.capital,
                               prefer_fast=payload.prefer_fast)
    from hedge_core.backtest.fast import FastPathUnsupported, fast_kpis

    cfg = payload.config if payload.config is not None else BacktestConfig()
    if payload.prefer_fast:
        try:
            k = fast_kpis(params, payload.timeline, config=cfg, capital=payload.capital)
            k["_fast"] = 1.0
            return k
        except FastPathUnsupported:
            pass
    k = dict(run_backtest(params, payload.timeline, config=cfg, keep_timeline=False).kpis)
    k["_fast"] = 0.0
    return k


# ---- execution --------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(evaluate: Evaluate, payload: Any) -> None:
    _WORKER["evaluate"] = evaluate
    _WORKER["payload"] = payload


def _fork_context() -> Any:
    """The 'fork' start method where the platform has it (Linux) and this process runs a single
    thread; else None (a fork server + initializer). Forking a multi-threaded process (the
    Streamlit panel, a Jupyter kernel, a Dask client) can deadlock the children."""
    import multiprocessing as mp

    if threading.active_count() > 1:
        return None
    try:
        return mp.get_context("fork")
    except ValueError:  # pragma: no cover - Windows / macOS default
        return None


def _safe_context() -> Any:
    """A start method safe from a multi-threaded process: 'forkserver' (its server imports
    hedge_core once, later pools start fast) where available, else 'spawn'."""
    import multiprocessing as mp

    try:
        ctx = mp.get_context("forkserver")
    except ValueError:  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx.set_forkserver_preload(["hedge_core.backtest.sweep", "hedge_core.backtest.event", "hedge_core.backtest.fast"])
    return ctx


def _run_one(i: int, params: BaseModel, evaluate: Evaluate | None = None, payload: Any = None) -> tuple[int, dict, str]:
    ev = evaluate if evaluate is not None else _WORKER["evaluate"]
    pl = payload if payload is not None else _WORKER["payload"]
    try:
        return i, dict(ev(params, pl)), ""
    except Exception as exc:  # noqa: BLE001 - one failed point is reported in its row, the sweep goes on
        return i, {}, f"{type(exc).__name__}: {exc}"


def _run_chunk(items: list[tuple[int, Any]], evaluate: Evaluate | None = None,
               payload: Any = None) -> list[tuple[int, dict, str]]:
    """Points of one task (a local worker reads the evaluator and payload it was started with)."""
    return [_run_one(i, m, evaluate, payload) for i, m in items]


def _chunks(n: int, workers: int) -> list[range]:
    """Consecutive index ranges: about 8 tasks per worker (fewer round trips through the pool's
    queues, which on a small machine compete with the workers for the CPU), at most 16 points each."""
    size = max(1, min(16, n // (8 * max(workers, 1))))
    return [range(a, min(a + size, n)) for a in range(0, n, size)]


def run_sweep(base: BaseModel, points: Sequence[Mapping[str, Any]], *, payload: Any,
              evaluate: Evaluate = evaluate_backtest, scheduler: Any = None, workers: int = 2,
              progress: Progress | None = None, show_progress: bool = True) -> pd.DataFrame:
    """Evaluate ``base`` with each point's overrides. Returns one row per point, in order.

    Parameters
    ----------
    base : pydantic params model
    points : list of {dotted path: value}
        Validated up front: an unknown name or a value a field refuses stops the sweep before anything
        runs. A point whose values the parameter set's own top-level rule refuses only TOGETHER (a
        cross-field rule, e.g. xcarry's ``spot_venue == perp_venue`` in a grid over both venues) is not
        run: its row carries the error (a nested model's rule, e.g. ``rebalance``'s bounds, names that
        nested field and stops the sweep like a bad value).
    payload : any picklable
        Passed to ``evaluate`` (default: a :class:`Payload`).
    evaluate : callable(params, payload) -> mapping of KPIs
        Must be picklable (a module-level function).
    scheduler : None | str | distributed.Client
        None: local processes; an address or Client: that Dask cluster.
    workers : int
        Local processes (0 = in this process).
    progress : callable(done, total), optional
    show_progress : bool
        Draw a tqdm bar on stderr.
    """
    if not points:
        raise InvalidInput("points", 0, "at least one parameter point")
    n = len(points)
    results: list[tuple[dict, str] | None] = [None] * n
    models: list[Any] = []
    for i, p in enumerate(points):
        try:
            models.append(apply_overrides(base, p))
        except InvalidInput as exc:
            if not getattr(exc, "combination", False):
                raise
            models.append(None)
            results[i] = ({}, f"{type(exc).__name__}: {exc}")  # this point's row carries the refusal
    run_idx = [i for i in range(n) if models[i] is not None]
    bar = None
    if show_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(run_idx), desc="sweep", leave=False)
    total = len(run_idx)

    def _done(i: int, k: dict, err: str, count: int) -> None:
        results[i] = (k, err)
        if bar is not None:
            bar.update(1)
        if progress is not None:
            progress(count, total)

    try:
        if not run_idx:
            pass
        elif scheduler is not None:
            _run_dask([(i, models[i]) for i in run_idx], evaluate, payload, scheduler, _done)
        elif workers == 0:
            for c, i in enumerate(run_idx, start=1):
                _, k, err = _run_one(i, models[i], evaluate, payload)
                _done(i, k, err, c)
        else:
            from concurrent.futures.process import BrokenProcessPool

            c = 0
            todo = list(run_idx)
            with _POOL_LOCK:  # one local sweep at a time (panel sessions are threads of one process)
                for attempt in (0, 1):
                    try:
                        futs = _submit_all(evaluate, payload, workers, [(i, models[i]) for i in todo])
                        for f in as_completed(futs):
                            for i, k, err in f.result():
                                c += 1
                                _done(i, k, err, c)
                        break
                    except BrokenProcessPool:  # a kept worker had died: once more on fresh workers
                        close_pool()
                        todo = [i for i in todo if results[i] is None]
                        if attempt:
                            raise
                    except BaseException:
                        close_pool()  # interrupted: never leave half-used workers behind
                        raise
    finally:
        if bar is not None:
            bar.close()
    rows = []
    for p, r in zip(points, results):
        k, err = r if r is not None else ({}, "not run")
        row = dict(p)
        fast = k.pop("_fast", math.nan) if k else math.nan
        row.update(k)
        row["path"] = {1.0: "fast", 0.0: "event"}.get(fast, "")
        row["error"] = err
        rows.append(row)
    return pd.DataFrame(rows)


# The local workers are kept between sweeps on the SAME payload and evaluator (a notebook tries
# grid after grid on one timeline): no fork, no numba load, no cold memory per sweep. Another
# payload, evaluator or worker count replaces them; close_pool() stops them, as does the exit.
_POOL: dict[str, Any] = {}
_POOL_LOCK = threading.RLock()


def _pool_for(evaluate: Evaluate, payload: Any, workers: int) -> ProcessPoolExecutor:
    key = _POOL.get("key")
    if key is not None and key[0] is evaluate and key[1] is payload and key[2] == workers:
        return _POOL["pool"]
    close_pool()
    ctx = _fork_context()
    if ctx is not None:  # forked workers inherit the payload: nothing large is pickled
        _init_worker(evaluate, payload)
        pool_kw: dict[str, Any] = {"mp_context": ctx}
    else:  # forked from a clean fork server; the payload is pickled once per worker
        pool_kw = {"mp_context": _safe_context(), "initializer": _init_worker, "initargs": (evaluate, payload)}
    pool = ProcessPoolExecutor(max_workers=workers, **pool_kw)
    _POOL["pool"], _POOL["key"] = pool, (evaluate, payload, workers)  # holds the payload: ids stay unique
    return pool


def _submit_all(evaluate: Evaluate, payload: Any, workers: int, items: list[tuple[int, Any]]) -> list:
    from concurrent.futures.process import BrokenProcessPool

    for attempt in (0, 1):
        pool = _pool_for(evaluate, payload, workers)
        try:
            return [pool.submit(_run_chunk, [items[j] for j in r]) for r in _chunks(len(items), workers)]
        except (BrokenProcessPool, RuntimeError):  # a kept worker died or the pool was shut down
            close_pool()
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def close_pool() -> None:
    """Stop the local worker processes kept from the last sweep (they are kept for the next sweep on
    the same payload; also stopped when this process exits), and let go of a payload kept
    scattered on a Dask Client."""
    with _POOL_LOCK:
        pool = _POOL.pop("pool", None)
        _POOL.pop("key", None)
        _WORKER.clear()
        _SCATTER.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _close_at_exit() -> None:
    if _POOL_LOCK.acquire(timeout=5.0):  # a sweep still running in another thread: leave it to the OS
        try:
            close_pool()
        finally:
            _POOL_LOCK.release()


atexit.register(_close_at_exit)


def _run_dask(items: list[tuple[int, Any]], evaluate: Evaluate, payload: Any, scheduler: Any,
              done: Callable[[int, dict, str, int], None]) -> None:
    from distributed import Client
    from distributed import as_completed as das_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        pf = _scattered(client, payload, keep=not own)
        nw = max(len(client.scheduler_info().get("workers", {})), 1)
        futs = [client.submit(_run_chunk, [items[j] for j in r], evaluate, pf, pure=False)
                for r in _chunks(len(items), nw)]
        c = 0
        for f in das_completed(futs):
            for i, k, err in f.result():
                c += 1
                done(i, k, err, c)
    finally:
        if own:
            client.close()


# The payload scattered to a caller's Client is kept for the next sweep through that same Client
# on the same payload (the workers already hold it: a year of 1-minute bars is ~150 MB to pickle,
# send and unpickle on every worker). An address given as a string gets a Client of its own for
# one sweep, so nothing is kept then.
_SCATTER: dict[str, Any] = {}


def _scattered(client: Any, payload: Any, *, keep: bool) -> Any:
    key = _SCATTER.get("key")
    if keep and key is not None and key[0] is client and key[1] is payload:
        fut = _SCATTER["future"]
        if client.status == "running" and fut.status == "finished":
            return fut
    _SCATTER.clear()
    fut = client.scatter(payload, broadcast=True, hash=False)  # no tokenizing 150 MB; a key of its own
    if keep:
        _SCATTER["key"], _SCATTER["future"] = (client, payload), fut  # holds both: ids stay unique
    return fut


def grid_search(base: BaseModel, grid: Mapping[str, Sequence[Any]], **kw: Any) -> pd.DataFrame:
    """:func:`run_sweep` over the Cartesian product of ``grid``."""
    return run_sweep(base, grid_points(grid), **kw)


def random_search(base: BaseModel, space: Mapping[str, Any], n: int, *, seed: int = 0, **kw: Any) -> pd.DataFrame:
    """:func:`run_sweep` over ``n`` seeded random points of ``space``."""
    return run_sweep(base, random_points(space, n, seed), **kw)


def best_row(table: pd.DataFrame, metric: str = "sharpe", *, maximize: bool = True) -> pd.Series:
    """The row with the best finite ``metric`` (ties: first). InvalidInput when none is finite."""
    if metric not in table.columns:
        raise InvalidInput("metric", metric, f"one of the result columns {sorted(table.columns)}")
    v = pd.to_numeric(table[metric], errors="coerce")
    v = v[np.isfinite(v)]
    if v.empty:
        raise InvalidInput("metric", metric, "a KPI with at least one finite value in the sweep")
    return table.loc[v.idxmax() if maximize else v.idxmin()]


def walk_forward(base: BaseModel, grid: Mapping[str, Sequence[Any]], market: Any, *, train: str | pd.Timedelta,
                 test: str | pd.Timedelta, start: Any = None, end: Any = None, step: str | pd.Timedelta | None = None,
                 metric: str = "sharpe", maximize: bool = True, config: Any = None, best_perp: bool = False,
                 perp_fees: Mapping[str, float] | None = None, **kw: Any) -> pd.DataFrame:
    """Rolling walk-forward: on each train window pick the best grid point by ``metric``, then run it
    on the following test window. Windows roll by ``step`` (default: the test length).

    Returns one row per fold: train/test bounds, the chosen parameters, its train metric and the
    test KPIs (``test_<kpi>``). For ``xcarry``, ``market`` is a ``VenueMarkets`` (one market per perp
    venue, :func:`hedge_core.backtest.xvenue_sweep.venue_markets`) or one ``cross_venue_market``.
    ``best_perp`` (xcarry, as ``hedge sweep --best-perp``): every point of every fold chooses its perp venue at
    each entry among its allowed venues (``perp_venue``, ``perp_venues``), each venue charged ``perp_fees[venue]``
    (else the point's ``perp_taker_fee``): the folds run on
    :class:`~hedge_core.backtest.xvenue_best_sweep.BestPerpMarkets` (a market of that type chooses per entry
    without the flag).
    """
    from hedge_core.backtest.event import BacktestConfig
    from hedge_core.backtest.timeline import build_timeline, utc

    cfg = config if config is not None else BacktestConfig()
    if getattr(base, "strategy", None) == "xcarry":
        from hedge_core.backtest.xvenue_sweep import VenueMarkets

        market = VenueMarkets.of(market)  # one market per perp venue: the timelines of a fold per venue
        if best_perp:  # each point chooses its perp venue per entry (backtest.xvenue_best_sweep)
            from types import MappingProxyType

            from hedge_core.backtest.xvenue_best_sweep import BestPerpMarkets

            market = BestPerpMarkets(market.by_venue, MappingProxyType(dict(perp_fees or {})))
    if (best_perp or perp_fees) and getattr(base, "strategy", None) != "xcarry":
        raise InvalidInput("best_perp", best_perp, "an xcarry set (the perp venue chosen per entry)")
    if perp_fees and not best_perp:
        raise InvalidInput("perp_fees", dict(perp_fees), "only with best_perp=True")
    tr, te = pd.Timedelta(train), pd.Timedelta(test)
    st = pd.Timedelta(step) if step is not None else te
    if tr <= pd.Timedelta(0) or te <= pd.Timedelta(0) or st <= pd.Timedelta(0):
        raise InvalidInput("train/test/step", (str(tr), str(te), str(st)), "positive durations")
    t0 = utc(start) if start is not None else market.first + cfg.warmup
    t_end = utc(end) if end is not None else market.last
    if t0 + tr + te > t_end:
        raise InvalidInput("train+test", str(tr + te), f"<= the window {t0} .. {t_end}")
    if hasattr(market, "fold_builder"):  # VenueMarkets
        build = market.fold_builder(cfg.spec)
    else:
        from hedge_core.analytics.inputs import market_inputs

        inputs = market_inputs(market.spot, market.perp, mark=market.mark, funding=market.funding, spec=cfg.spec,
                               bar_seconds=market.bar.total_seconds())

        def build(s: Any, e: Any) -> Any:
            return build_timeline(market, start=s, end=e, inputs=inputs)
    points = grid_points(grid)
    folds = []
    a = t0
    while a + tr + te <= t_end:
        tl_train = build(a, a + tr)
        tl_test = build(a + tr, a + tr + te)
        table = run_sweep(base, points, payload=Payload(tl_train, cfg), **kw)
        best = best_row(table, metric, maximize=maximize)
        chosen = {k: best[k] for k in grid}
        test_row = run_sweep(base, [chosen], payload=Payload(tl_test, cfg), workers=0, show_progress=False,
                             evaluate=kw.get("evaluate", evaluate_backtest)).iloc[0]
        fold = {"train_start": a, "train_end": a + tr, "test_start": a + tr, "test_end": a + tr + te,
                **chosen, f"train_{metric}": float(best[metric])}
        for c in test_row.index:
            if c not in grid:
                fold[f"test_{c}"] = test_row[c]
        folds.append(fold)
        a = a + st
    return pd.DataFrame(folds)
