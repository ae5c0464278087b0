"""The two-perp-leg fault matrix's harness (one runner per (pair, fault) through a pair's life, the fault armed;
tests/test_xvenue_perp_perp_fault_matrix.py explains the rows): shared by that file and
tests/test_xvenue_perp_perp_fault_matrix_okx.py (Bybit first + OKX second, and the pair's kill -9 row)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support import fault_matrix as fm
from tests.support.fault_matrix import PAIR_STEPS, Venue

HID = "pf1"
PHASE_S = 25.0  # a phase that has not settled by then FAILED
PRICE = 30_000.0  # both venues: the pair hedges one price
RATE_A, RATE_B = 0.0001, 0.0005  # per 8 h: A lower (the pair is long there), B higher (short there)
A_ENTRY, B_HEDGE, A_REBALANCE, A_CLOSE = PAIR_STEPS
MARGIN = "margin refusal"
ADL = "auto-deleverage"
STALE = "stale ticker"
# a venue's refusal for margin, from its error table (Binance USD-M -2019 "Margin is insufficient.", Bybit v5
# 110007 "ab not enough for new order", OKX 51008 "Order failed. Insufficient USDT margin in account")
REFUSAL = {"binance": dict(code=-2019, msg="Margin is insufficient.", status=400),
           "bybit": dict(code=110007, msg="ab not enough for new order"),
           "okx": dict(code="51008", msg="Order failed. Insufficient USDT margin in account")}
NA = {(MARGIN, A_CLOSE): "a reduce-only close frees margin: no venue refuses it for margin"}


def start(c: Any, a: Venue, b: Venue) -> None:
    c.start(fm.PAIR_SET, mode="live", feed="ticker", poll_s=0.1, recovery="resume", hedge_id=HID, confirm_live=True,
            venue=a.venue, perp_venue=b.venue, legs="perp_perp", reconcile_s=0.5, records_poll_s=0.3,
            max_ticker_age_s=5.0)


def wait(pred: Any, timeout: float = PHASE_S, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False


def when(v: Venue, fn: Any, pattern: str | None = None, *, on_loop: bool = False) -> None:
    """Run ``fn()`` on ``v``'s loop when its next request matching ``pattern`` (default: its perp order) arrives.
    ``on_loop``: called from a hook already on ``v``'s loop."""
    pat, cat = v.order_key("perp")
    pattern = pattern or pat
    args = (pattern, fn) if v.venue == "binance" else (pattern, fn, cat if pattern == pat else None)
    if on_loop:
        v.faults.when(*args)
    else:
        v.call(v.faults.when, *args)


def stale_for(v: Venue, seconds: float = 1.5) -> None:
    """``v``'s tickers stale (Binance/OKX 60 s old and 2 % off, Bybit 2 % off) for ``seconds``; on ``v``'s loop."""
    v.stale(True)
    v.loop.call_later(seconds, v.stale, False)


def arm(a: Venue, b: Venue, fault: str, step: str) -> None:
    """Arm ``fault`` for ``step``: A's entry order, B's hedge order, A's rebalance order, A's close order (before
    its phase)."""
    v = b if step == B_HEDGE else a
    if fault in fm.LOST or fault == fm.ESCALATION:
        fm.arm_orders(v, fault, [v.order_key("perp")])
    elif fault == MARGIN:
        pattern, _cat = v.order_key("perp")
        v.call(v.sim.inject, pattern, count=1, **REFUSAL[v.venue])
    elif fault == ADL:
        def adl_now() -> None:
            pos = v.perp_now()
            if abs(pos) >= 0.002:  # half: far beyond the rebalance band
                v.adl(round(abs(pos) / 2, 3))

        if step in (A_REBALANCE, A_CLOSE):  # deleveraged as A's order arrives, before it executes
            when(v, adl_now)
        else:  # the leg's order just executed: the venue deleverages half of it at its next request
            when(v, lambda: when(v, adl_now, ".", on_loop=True))
    elif fault == STALE:
        if step == A_ENTRY:  # before the start: A's price (the first leg's) is stale
            v.call(stale_for, v)
        elif step == B_HEDGE:  # between the first leg's order and the hedge decision: B's price is stale
            when(a, lambda: b.loop.call_soon_threadsafe(stale_for, b))
        else:  # before the venue's deleveraging that starts the rebalance / before the stop
            v.call(stale_for, v)
    else:
        raise ValueError(fault)


class PairCase:
    """One pair's life (A long, B short) under one fault, the phases' problems collected per cell."""

    def __init__(self, tmp: Path, first: str, second: str, row: str) -> None:
        self.a, self.b = Venue(first, PRICE), Venue(second, PRICE)
        for v, rate in ((self.a, RATE_A), (self.b, RATE_B)):
            sym = fm.OKX_SWAP if v.venue == "okx" else "BTCUSDT"
            if v.venue == "binance":
                v.call(v.sim.set_funding_rate, sym, rate)
            else:
                v.sim.funding_rate[sym] = rate
        self.env, self.extra = fm.pair_runner_env(tmp, self.a, self.b)
        self.row, self.why = row, ""
        self.problems: dict[str, list[str]] = {}

    def runner(self) -> Any:
        self.proc = self.env.start_runner(self.extra)
        return self.env.client(self.proc)

    def delta(self) -> float:
        return self.a.perp() + self.b.perp()

    def quiet(self, c: Any, want: str) -> bool:
        """The phase is over: every armed fault fired, the hedge is in ``want`` with nothing pending, the venues'
        positions agree within a lot and every venue execution is journaled (polled until PHASE_S)."""
        def calm() -> bool:
            unfired = self.a.unfired() + self.b.unfired()
            h = c.hedge(HID)
            fills = c.history("fills", hedge_id=HID)
            missing = []
            for v in (self.a, self.b):
                have = set(fm.trade_ids(v, fills[fills["venue"] == v.venue] if len(fills) else fills))
                missing += [e.trade_id for e in v.executions() if e.trade_id not in have]
            delta = self.delta()
            self.why = (f"unfired {unfired}, state {h.get('state')}, pending {h.get('pending_orders')}, "
                        f"{self.a.venue} {self.a.perp():.8f} {self.b.venue} {self.b.perp():.8f}, "
                        f"executions not journaled {missing}")
            return (not unfired and h.get("state") == want and not h.get("pending_orders")
                    and abs(delta) <= fm.LOT + 1e-9 and not missing)

        self.why = ""
        return wait(calm, interval=0.2)

    def check(self, c: Any, steps: tuple[str, ...], ok: bool, what: str, want: str = "MONITORING_POSITIONS") -> bool:
        ok = ok and self.quiet(c, want)
        bad = [] if ok else [f"{what} did not settle in {PHASE_S:g} s ({self.why}): {self.env.last_log(600)}"]
        if ok:
            bad += fm.pair_invariants(self.a, self.b, c.history("fills", hedge_id=HID),
                                      c.history("funding_payments", hedge_id=HID), c.hedge(HID))
        if ok and self.row == fm.ESCALATION:  # a rate limit holds the order back, it is no refusal: none journaled
            orders = c.history("orders", hedge_id=HID)  # (OKX 50061 is an ExchangeError in ccxt, errors_map)
            refused = orders[orders["status"] == "rejected"] if len(orders) else orders
            bad += [f"a rate limit journaled as a refusal: {r.client_order_id} {getattr(r, 'reason', '')}"
                    for r in refused.itertuples()]
        for s in steps:
            self.problems.setdefault(s, []).extend(bad)
        return ok

    def funding(self, c: Any) -> bool:
        """One settlement at each venue, at its own rate; the hedge books both from the venues' records."""
        for v, rate in ((self.a, RATE_A), (self.b, RATE_B)):
            v.call(v.sim.settle_funding, fm.OKX_SWAP if v.venue == "okx" else "BTCUSDT", rate)
        want = self.a.funding() + self.b.funding()
        return wait(lambda: abs(c.hedge(HID).get("funding", 0.0) - want) < 1e-8)

    def record(self) -> None:
        for s in PAIR_STEPS:
            self.problems.setdefault(s, ["not reached (an earlier phase failed)"])
            na = NA.get((self.row, s))
            fm.record(f"{self.a.venue}+{self.b.venue}", self.row, s,
                      "n/a" if na else ("FAILED" if self.problems[s] else "holding"))

    def close(self) -> None:
        self.env.cleanup()
        self.a.close()
        self.b.close()

    def failures(self) -> str:
        return "\n".join(f"{s}: {p}" for s, ps in self.problems.items() for p in ps)


def _started(c: Any, a: Venue, b: Venue) -> bool:
    try:
        start(c, a, b)
        return True
    except Exception:  # noqa: BLE001 - still stale: refused again
        time.sleep(0.2)
        return False


def hedged(c: Any, case: PairCase) -> bool:
    h = c.hedge(HID)
    return (h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders")
            and case.a.perp() > 0 > case.b.perp())


def run_fault_case(tmp_path: Path, first: str, second: str, fault: str) -> None:
    """One runner carries one pair (``first`` long, ``second`` short) through its four steps with ``fault`` armed
    on each step's venue (module docstring); the cells are recorded, any problem fails (also used by
    tests/test_xvenue_perp_perp_fault_matrix_okx.py)."""
    case = PairCase(tmp_path, first, second, fault)
    a, b = case.a, case.b
    try:
        c = case.runner()
        arm(a, b, fault, A_ENTRY)
        arm(a, b, fault, B_HEDGE)
        seen: list[list[tuple[str, float]]] = []  # A's orders when B's first order request arrived
        when(b, lambda: seen.append(a.orders()))  # on B's loop, reads A's
        ok = True
        try:
            start(c, a, b)
        except Exception as exc:  # noqa: BLE001 - checked below
            # a stale price at the start: the preflight refuses it, nothing is sent to either venue; once the
            # ticker is fresh again the same start goes through (docs/live-freshness-preflight.md)
            refused = fault == STALE and "stale price" in str(exc) and not a.orders() and not b.orders()
            if not refused:
                case.problems[A_ENTRY] = [f"start refused: {exc}"]
            ok = refused and wait(lambda: _started(c, a, b))
        ok = ok and wait(lambda: hedged(c, case)) and case.funding(c)
        if case.check(c, (A_ENTRY, B_HEDGE), ok, "entry + hedge (+ funding)"):
            # the first leg's outcome was known before anything was sent to B: no order of the entry's intent
            # (client-id prefix h<leg><seq>) sent or executed at A after B was asked
            intents = {cid[:7] for cid, _q in seen[0]} if seen else set()
            entry = [o for o in a.orders() if o[0][:7] in intents]
            if not seen or sorted(seen[0]) != sorted(entry):
                case.problems[A_ENTRY].append(f"B was asked before A's first leg was known: A's orders then {seen}, "
                                              f"after the hedge {entry}")
            if not seen or not any(q > 0 for _c, q in seen[0]):
                case.problems[A_ENTRY].append(f"B was asked with nothing executed at A: {seen}")
            # A rebalance, B open: venue A deleverages a third of the long (a venue event); the hedge buys it back
            # at A with B's short open (and trims B until A's order has filled); the fault hits A's order
            arm(a, b, fault, A_REBALANCE)
            b_open: list[float] = []  # B's position when A's rebalance order arrived
            when(a, lambda: b_open.append(b.perp()))  # on A's loop, reads B's
            before = a.perp()
            a.call(a.adl, round(before / 3, 3))
            ok = wait(lambda: abs(a.perp() - before) <= fm.LOT + 1e-9) and wait(lambda: hedged(c, case))
            if case.check(c, (A_REBALANCE,), ok, "rebalance") and not (b_open and b_open[0] < -fm.LOT):
                case.problems[A_REBALANCE].append(f"B's leg was not open when A's rebalance order arrived: {b_open}")
        if case.problems.get(A_REBALANCE) == []:
            if (fault, A_CLOSE) not in NA:
                arm(a, b, fault, A_CLOSE)
            c.stop(HID)
            ok = wait(lambda: c.hedge(HID).get("state") == "COMPLETED") and a.perp() == 0 and b.perp() == 0
            case.check(c, (A_CLOSE,), ok, "close", "COMPLETED")
        case.record()
    finally:
        case.close()
    assert not case.failures(), case.failures()
