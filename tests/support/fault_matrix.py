"""Harness of the live fault matrix (tests/test_live_fault_matrix.py) and of its perp-pair form
(tests/test_xvenue_perp_perp_fault_matrix.py); no tests here.

- :func:`make_adapter`: the runner-side adapter factory (``HEDGE_RUNNER_ADAPTER_FACTORY``) for
  BOTH simulators: real ccxt, production host names mapped to 127.0.0.1, TLS against the test CA,
  a short ``recvWindow`` (so a lost order's outcome window is ~1.3 s, not 12 s) and a 1.5 s client
  timeout (the ``timeout`` fault hangs longer); :func:`make_pair_adapter` the same for both legs of a
  perp pair (one simulator per venue).
- :class:`Venue`: one simulator (Binance, Bybit or OKX) on its own event-loop thread with its fault
  controls, plus the read-outs the invariants need, in one shape for both venues.
- :func:`runner_env`: the runner environment of a case (parameter set, promotion, the factory's variables);
  :func:`pair_runner_env` for a perp pair; :func:`arm_orders`: a lost answer or a rate limit on order requests.
- :func:`invariants`: the four end-of-case checks on the simulator's own state against the
  runner's journal (no naked leg above one lot, one venue order per intent, every venue execution
  journaled, ledger fees and funding equal to the venue's records); :func:`pair_invariants` on both
  venues of a perp pair.
- :data:`RESULTS` and :func:`render`: the matrix (rows: fault, columns: steps) printed at the end
  of the session by ``tests/conftest.py``'s terminal-summary hook.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tests.support.loop_thread import stop_loop_thread

FACTORY = "tests.support.fault_matrix:make_adapter"
PAIR_FACTORY = "tests.support.fault_matrix:make_pair_adapter"
RECV_WINDOW_MS = 1000  # signed requests' recvWindow in the matrix (ccxt option of the adapter)
OUTCOME_MARGIN_S = 0.3
CLIENT_TIMEOUT_MS = 1500
LOT = 0.001  # BTC perp lot on both venues (Binance stepSize / Bybit qtyStep); spot lots are finer
STEPS = ("spot entry", "perp hedge", "rebalance", "close")
# a perp pair (first leg long on venue A, second short on B): the fault on A at entry, on B at the hedge, on A's
# rebalance order while B's leg is open, on A's close (tests/test_xvenue_perp_perp_fault_matrix.py)
PAIR_STEPS = ("A entry", "B hedge", "A rebalance", "A close")
PRICE = {"binance": 40_000.0, "bybit": 30_000.0, "okx": 30_000.0}
OKX_SPOT, OKX_SWAP = "BTC-USDT", "BTC-USDT-SWAP"


def _venue_adapter(venue: str, port: int) -> Any:
    """The matrix's live adapter of ``venue`` against its simulator on ``port``: real ccxt, a 1.5 s client
    timeout, a 1 s recvWindow and a 0.3 s outcome margin."""
    from hedge_core.exchange.credentials import Credentials
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.okx_sim import HOSTS as OKX_HOSTS
    from tests.support.redirect import sim_adapter

    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    hosts = {"binance": HOSTS + WS_HOSTS, "bybit": BYBIT_HOSTS, "okx": OKX_HOSTS}[venue]
    creds = Credentials(venue, os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"],
                        os.environ.get("HEDGE_TEST_SIM_PASSPHRASE") if venue == "okx" else None,
                        source="test")
    # over its own redirect session, closed with the adapter (tests.support.redirect.sim_adapter)
    return sim_adapter(venue, creds, {h: port for h in hosts}, ctx, timeout_ms=CLIENT_TIMEOUT_MS,
                       enable_rate_limit=False, fill_poll_interval=0.01,
                       ccxt_options={"recvWindow": RECV_WINDOW_MS}, outcome_margin_s=OUTCOME_MARGIN_S)


def make_adapter(spec: Any) -> Any:
    """Runner hook: the live adapter of ``spec.venue`` against the simulator of this test."""
    return _venue_adapter(spec.venue, int(os.environ["HEDGE_TEST_SIM_PORT"]))


def make_pair_adapter(spec: Any) -> Any:
    """Runner hook of a perp pair (``legs = "perp_perp"``): each leg's venue gets the matrix's adapter
    (:func:`_venue_adapter`) against its own simulator, whose port is in ``HEDGE_TEST_PORT_<VENUE>``
    (:func:`tests.support.simfactory_pplive_okx.port_var`), joined by ``PerpPairLive`` (routed by leg)."""
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.routed_pair_live import PerpPairLive
    from tests.support.simfactory_pplive_okx import port_var

    venues = tuple(spec.leg_venues)
    if not spec.perp_pair or any(port_var(v) not in os.environ for v in venues):
        raise InvalidInput("venues", venues, "a perp pair, each venue's simulator port set")
    first, second = (_venue_adapter(v, int(os.environ[port_var(v)])) for v in venues)
    return PerpPairLive(first, second)


@dataclass(frozen=True)
class Exec:
    """One venue execution of the account (a fill; funding is not one)."""

    trade_id: str  # as the journal keys it
    client_id: str  # '' for the venue's own orders (ADL)
    fee_usdt: float  # commission valued in USDT at the fill price


class Venue:
    """A simulator (``binance`` | ``bybit`` | ``okx``) with its faults, served on its own loop thread.
    ``price``: its BTC price (default :data:`PRICE` of the venue; a perp pair gives both venues one)."""

    def __init__(self, venue: str, price: float | None = None) -> None:
        from tests.support import live_env as sim_env
        from tests.support.binance_sim import HOSTS, WS_HOSTS, SimServer
        from tests.support.live_env import TEST_KEY, TEST_SECRET

        self.venue = venue
        self.price = float(PRICE[venue] if price is None else price)
        if venue == "binance":
            from tests.support.binance_faults import BinanceFaults
            from tests.support.binance_sim import BinanceSim

            self.sim: Any = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 10_000.0})
            self.sim.set_price("BTCUSDT", self.price)
            self.sim.set_funding_rate("BTCUSDT", 0.0005)
            self.faults: Any = BinanceFaults(self.sim)
            hosts = HOSTS + WS_HOSTS
        elif venue == "okx":
            from tests.support.live_env import TEST_PASSPHRASE
            from tests.support.okx_faults import OkxFaults
            from tests.support.okx_sim import HOSTS as OKX_HOSTS
            from tests.support.okx_sim import OkxSim

            self.sim = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE, usdt=20_000.0)
            for inst in (OKX_SPOT, OKX_SWAP):
                self.sim.set_price(inst, self.price)
            self.sim.funding_rate[OKX_SWAP] = 0.0005
            self.faults = OkxFaults(self.sim)
            hosts = OKX_HOSTS
        else:
            from tests.support.bybit_faults import BybitFaults
            from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
            from tests.support.bybit_sim import BybitSim

            self.sim = BybitSim(api_key=TEST_KEY, secret=TEST_SECRET, coins={"USDT": 20_000.0})
            self.sim.set_price("BTCUSDT", self.price)
            self.sim.funding_rate["BTCUSDT"] = 0.0005
            self.faults = BybitFaults(self.sim)
            hosts = BYBIT_HOSTS
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = SimServer(self.sim, sim_env.test_ca(), hosts=hosts)
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(30)

    def close(self) -> None:
        stop_loop_thread(self.loop, self.thread, lambda: self.server.__aexit__(None, None, None))

    def call(self, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        """Run a control call on the simulator's loop (its state is only touched there)."""

        async def run() -> Any:
            return fn(*a, **kw)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def later(self, delay_s: float, fn: Callable[..., Any], *a: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.loop.call_later(delay_s, fn, *a))

    # ---- order patterns of a step's orders ('METHOD /path' + the Bybit category / the OKX instId)
    def order_key(self, leg: str) -> tuple[str, str | None]:
        if self.venue == "binance":
            return (r"POST /api/v3/order$" if leg == "spot" else r"POST /fapi/v1/order$"), None
        if self.venue == "okx":
            return r"POST /api/v5/trade/order$", (OKX_SPOT if leg == "spot" else OKX_SWAP)
        return r"POST /v5/order/create$", ("spot" if leg == "spot" else "linear")

    # ---- read-outs (on the simulator's loop)
    def spot_base(self) -> float:
        if self.venue == "binance":
            return self.call(lambda: sum(self.sim.spot.get("BTC", [0.0, 0.0])))
        if self.venue == "okx":
            return self.call(lambda: self.sim.cash.get("BTC", 0.0))
        return self.call(lambda: self.sim.coins.get("BTC", 0.0))

    def perp_now(self) -> float:
        """The signed perp position, base units; on the simulator's loop (a fault hook) only."""
        if self.venue == "binance":
            return float(self.sim.position("BTCUSDT"))
        if self.venue == "okx":  # OKX holds contracts of ctVal base
            return self.sim.positions.get(OKX_SWAP, [0.0, 0.0])[0] * self.sim.ct_val(OKX_SWAP)
        return float(self.sim.positions.get("BTCUSDT", [0.0, 0.0])[0])

    def perp(self) -> float:
        return self.call(self.perp_now)

    def orders(self) -> list[tuple[str, float]]:
        """(client id, executed base) of every order the venue holds for this account, any status."""
        if self.venue == "binance":
            return self.call(lambda: [(o.client_id, o.executed) for o in self.sim.orders.values()])
        if self.venue == "okx":
            return self.call(lambda: [(o.cl_ord_id, o.acc_fill_sz * self.sim.ct_val(o.inst_id))
                                      for o in self.sim.orders.values()])
        return self.call(lambda: [(o.link_id, o.cum_qty) for o in self.sim.orders.values()])

    def executions(self) -> list[Exec]:
        def read() -> list[Exec]:
            out = []
            if self.venue == "binance":
                cid = {o.order_id: o.client_id for o in self.sim.orders.values()}
                for t in self.sim.trades:
                    sym = "BTC/USDT" if t["market"] == "spot" else "BTC/USDT:USDT"
                    fee = float(t["commission"])
                    fee *= float(t["price"]) if t["commissionAsset"] == "BTC" else 1.0
                    out.append(Exec(f"{sym}#{t['id']}", cid.get(t["orderId"], ""), fee))
            elif self.venue == "okx":
                for f in self.sim.fills:  # "fee" < 0 is a charge; a spot buy pays it in BTC
                    fee = -float(f["fee"]) * (float(f["fillPx"]) if f["feeCcy"] == "BTC" else 1.0)
                    sym = "BTC/USDT" if f["instType"] == "SPOT" else "BTC/USDT:USDT"
                    out.append(Exec(f"{sym}#{f['tradeId']}", f["clOrdId"], fee))
            else:
                for r in self.sim.executions:
                    if r["execType"] == "Funding":
                        continue
                    fee = float(r["execFee"]) * (float(r["execPrice"]) if r["feeCurrency"] == "BTC" else 1.0)
                    sym = "BTC/USDT" if r["category"] == "spot" else "BTC/USDT:USDT"
                    out.append(Exec(f"{sym}#{r['execId']}", r["orderLinkId"], fee))
            return out

        return self.call(read)

    def funding(self) -> float:
        """The venue's funding income (+ received), USDT."""
        if self.venue == "binance":
            return self.call(lambda: sum(float(r["income"]) for r in self.sim.income
                                         if r["incomeType"] == "FUNDING_FEE"))
        if self.venue == "okx":  # bills of type 8, balChg + received
            return self.call(lambda: sum(float(b["balChg"]) for b in self.sim.bills if b["type"] == "8"))
        return self.call(lambda: -sum(float(r["execFee"]) for r in self.sim.executions if r["execType"] == "Funding"))

    def unfired(self) -> list[str]:
        """Faults armed that no request met yet (a cell whose fault never fired proves nothing)."""
        f = self.faults

        def read() -> list[str]:
            if self.venue == "binance":
                return ([f"lost {x.pattern}" for x in f.lost] + [f"429 {e[0]}" for e in f._escalate]
                        + [f"event at {w[0]}" for w in f._when] + (["418 ban"] if f._ban_next else []))
            if self.venue == "okx":
                return f.unfired()
            return ([f"lost {x[0]} {x[1]}" for x in f._lost] + [f"{q[3]} {q[0]} {q[1]}" for q in f._queue]
                    + [f"event at {w[0]} {w[1]}" for w in f._when])

        def injected() -> list[str]:  # the simulators' own forced answers (``sim.inject``)
            if self.venue == "binance":
                return [f"{x.code or x.status} {x.pattern}" for x in self.sim.faults if x.count > 0]
            return [f"{x[2]} {x[0]}" for x in self.sim.faults if x[1] > 0]

        return self.call(read) + self.call(injected) + (["stale ticker"] if self.stale_on else [])

    # ---- venue events
    def settle_funding(self) -> None:
        """One funding settlement at 0.05 % (a short receives); every simulator takes (symbol, rate)."""
        self.call(self.sim.settle_funding, OKX_SWAP if self.venue == "okx" else "BTCUSDT", 0.0005)

    def adl(self, qty: float) -> None:
        """The venue deleverages ``qty`` base of the perp position (a short bought back, a long sold) 1 % above
        the start price.
        Call on the simulator's loop (``call``) or from a fault hook (already there)."""
        self.sim.adl(OKX_SWAP if self.venue == "okx" else "BTCUSDT", qty, self.price * 1.01)

    stale_on = False

    def stale(self, on: bool) -> None:
        self.stale_on = on
        if self.venue == "binance":
            self.sim.stale_ticker("BTCUSDT", 60_000 if on else None, self.price * 0.98 if on else None)
        elif self.venue == "okx":
            for inst in (OKX_SPOT, OKX_SWAP):
                self.sim.stale_ticker(inst, 60_000 if on else None, self.price * 0.98 if on else None)
        else:
            self.sim.stale_ticker("BTCUSDT", self.price * 0.98 if on else None)


# ---- arming a lost answer or a rate limit on order requests -------------------------------------
LOST = {  # fault -> (Binance mode, Bybit/OKX mode, execute_after_s): executed at once, never, or later
    "lost answer 503": ("503", "503", 0.0),
    "-1007 / timeout": ("-1007", "timeout", None),
    "dropped connection": ("drop", "drop", None),
    "late execution": ("503", "503", 0.6),  # within the 1 s recvWindow of the matrix's adapter
}
ESCALATION = "429->418 / 10006->10018 / 50011->50061"


def arm_orders(v: Venue, fault: str, keys: list[tuple[str, str | None]]) -> None:
    """Arm ``fault`` (a :data:`LOST` row or :data:`ESCALATION`) on the next order request of each
    ``(pattern, Bybit category | OKX instId)`` key (:meth:`Venue.order_key`)."""
    binance = v.venue == "binance"
    for pattern, cat in keys:
        if fault in LOST:
            b_mode, y_mode, after = LOST[fault]
            if binance:
                v.call(v.faults.lose_answer, pattern, mode=b_mode, execute_after_s=after, hang_s=2.5)
            # Bybit: its category; OKX: the instId (OKX has no -1007: its timeout is 50004 after the hang)
            else:
                v.call(v.faults.lose_answer, pattern, cat, mode=y_mode, execute_after_s=after, hang_s=2.5)
        elif fault == ESCALATION:
            if binance:
                v.call(v.faults.escalate, pattern, retry_after_s=1, ban_s=1)
            elif v.venue == "okx":
                v.call(v.faults.escalate, pattern, cat)
            else:
                v.call(v.faults.escalate, pattern, cat, reset_s=1.0)
        else:
            raise ValueError(f"fault={fault!r}: one of {[*LOST, ESCALATION]}")


def runner_env(tmp: Path, v: Venue) -> tuple[Any, dict[str, str]]:
    """A runner environment (tests/support/runner_env.py) whose live parameter set ``carry-test`` has no exits
    and no rebalance cooldown (a second drift inside one phase, an ADL during a rebalance, is acted on at once),
    promoted to live; and the runner's extra environment reaching ``v`` through :func:`make_adapter`."""
    from hedge_core.params import promotion
    from tests.support import live_env as sim_env
    from tests.support.live_env import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET
    from tests.support.runner_env import make_env

    env = make_env(tmp, days=1, export={"exit": {"max_holding_hours": None, "profit_target_pct": None,
                                                 "stop_loss_pct": None, "funding_unfavourable_intervals": None},
                                        "rebalance": {"cooldown_s": 0.0}})
    promotion.promote("carry-test", 1, "paper", root=env.params, db=env.db)
    promotion.promote("carry-test", 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                      root=env.params, db=env.db)
    ca = tmp / "ca.pem"
    sim_env.test_ca().cert_pem.write_to_path(str(ca))
    extra = {"HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_SIM_PORT": str(v.server.port),
             "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY, "HEDGE_TEST_SIM_SECRET": TEST_SECRET,
             "HEDGE_TEST_SIM_PASSPHRASE": TEST_PASSPHRASE}
    return env, extra


PAIR_SET = "pp-fm"  # the perp pair's live parameter set (:func:`pair_runner_env`)


def pair_runner_env(tmp: Path, a: Venue, b: Venue) -> tuple[Any, dict[str, str]]:
    """:func:`runner_env` for a perp pair: the live ``xcarry`` set :data:`PAIR_SET` (``legs = "perp_perp"``, the
    first leg on ``a``, the second on ``b``, entering at once; no exits, no funding-cost guard, no rebalance
    cooldown), and the runner's extra environment building both legs through :func:`make_pair_adapter`."""
    from hedge_core.params import promotion
    from hedge_core.params import store as param_store
    from hedge_core.params.xcarry import CrossCarryParams
    from tests.support.simfactory_pplive_okx import port_var

    env, extra = runner_env(tmp, a)
    p = CrossCarryParams(legs="perp_perp", spot_venue=a.venue, perp_venue=b.venue, notional=1000.0,
                         min_funding_rate=0.0, min_net_carry=-1.0,
                         exit={"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                               "funding_unfavourable_intervals": None},
                         guards={"funding_cost_apr_limit": None}, rebalance={"cooldown_s": 0.0})
    param_store.export(p, PAIR_SET, created_from="test", root=env.params, db=env.db, kpis={"sharpe": 1.0})
    promotion.promote(PAIR_SET, 1, "paper", root=env.params, db=env.db)
    promotion.promote(PAIR_SET, 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                      root=env.params, db=env.db)
    extra = {**extra, "HEDGE_RUNNER_ADAPTER_FACTORY": PAIR_FACTORY, port_var(a.venue): str(a.server.port),
             port_var(b.venue): str(b.server.port)}
    return env, extra


def invariants(v: Venue, fills: pd.DataFrame, funding: pd.DataFrame, ledger: dict | None = None) -> list[str]:
    """Problems found (empty: the case holds). ``fills`` / ``funding``: the hedge's journal tables;
    ``ledger``: the hedge's own figures (``fees``, ``funding``, USDT) as the runner reports them."""
    bad: list[str] = []
    spot, perp = v.spot_base(), v.perp()
    if abs(spot + perp) > LOT + 1e-9:
        bad.append(f"naked leg: spot {spot:.8f} + perp {perp:.8f} = {spot + perp:.8f} > one lot {LOT}")
    more, venue_fees, venue_funding = venue_checks(v, fills, funding)
    return bad + more + _ledger_checks(ledger, venue_fees, venue_funding)


def pair_invariants(a: Venue, b: Venue, fills: pd.DataFrame, funding: pd.DataFrame,
                    ledger: dict | None = None) -> list[str]:
    """:func:`invariants` of a perp pair: the first leg a perp on ``a``, the second a perp on ``b``. No naked leg:
    the two venues' positions sum within one lot; each venue's orders, executions, fees and funding against the
    journal's rows of THAT venue; the hedge's ledger against the two venues' sums."""
    bad: list[str] = []
    long_a, short_b = a.perp(), b.perp()
    if abs(long_a + short_b) > LOT + 1e-9:
        bad.append(f"naked leg: {a.venue} {long_a:.8f} + {b.venue} {short_b:.8f} = {long_a + short_b:.8f} "
                   f"> one lot {LOT}")
    fees = fund = 0.0
    for v in (a, b):
        mine_f = fills[fills["venue"] == v.venue] if len(fills) else fills
        mine_p = funding[funding["venue"] == v.venue] if len(funding) else funding
        more, venue_fees, venue_funding = venue_checks(v, mine_f, mine_p)
        bad += [f"{v.venue}: {m}" for m in more]
        fees, fund = fees + venue_fees, fund + venue_funding
    return bad + _ledger_checks(ledger, fees, fund)


def trade_ids(v: Venue, fills: pd.DataFrame) -> list[str]:
    """The journal's trade ids of ``fills`` as :meth:`Venue.executions` keys them (``<symbol>#<venue trade id>``):
    the records of a FIRST leg that is a perp (two perp legs) are journaled ``<venue>:<symbol>#<id>``
    (``hedge_core.engine.driver.record_trade_id``), the venue prefix is dropped."""
    if not len(fills):
        return []
    return [str(t).removeprefix(f"{v.venue}:") for t in fills["trade_id"]]


def venue_checks(v: Venue, fills: pd.DataFrame, funding: pd.DataFrame) -> tuple[list[str], float, float]:
    """The checks of one venue against the journal's rows of it (``fills``, ``funding``): one venue order per
    intent (client-id prefix ``h<leg><seq:05d>``), every venue execution journaled once and nothing else, fees
    and funding equal to the venue's records within 1e-8 USDT. Returns (problems, venue fees, venue funding)."""
    bad: list[str] = []
    intents: dict[str, list[tuple[str, float]]] = {}
    for cid, executed in v.orders():
        if cid.startswith("h"):
            intents.setdefault(cid[:7], []).append((cid, executed))
    for prefix, orders in intents.items():
        if len(orders) > 1:
            bad.append(f"two venue orders for intent {prefix}: {orders}")
    execs = v.executions()
    ids = trade_ids(v, fills)
    journaled = set(ids)
    missing = [e.trade_id for e in execs if e.trade_id not in journaled]
    if missing:
        bad.append(f"venue executions not in the journal: {missing}")
    extra = journaled - {e.trade_id for e in execs}
    if extra:
        bad.append(f"journal fills the venue never executed: {sorted(extra)}")
    if len(ids) != len(journaled):
        bad.append(f"a venue execution booked twice: {len(fills)} fills, {len(journaled)} trade ids")
    booked = 0.0
    for fee, px, cur in zip(fills.get("fee", []), fills.get("price", []), fills.get("fee_currency", [])):
        booked += fee * px if cur == "BTC" else fee
    venue_fees = sum(e.fee_usdt for e in execs)
    if abs(booked - venue_fees) > 1e-8:
        bad.append(f"fees: ledger {booked:.10f} != venue {venue_fees:.10f} USDT")
    got = float(funding["amount"].sum()) if len(funding) else 0.0
    want = v.funding()
    if abs(got - want) > 1e-8:
        bad.append(f"funding: journal {got:.10f} != venue {want:.10f} USDT")
    return bad, venue_fees, want


def _ledger_checks(ledger: dict | None, fees: float, funding: float) -> list[str]:
    if ledger is None:
        return []
    return [f"{key}: hedge ledger {ledger.get(key)} != venue {figure:.10f} USDT"
            for key, figure in (("fees", fees), ("funding", funding))
            if abs(float(ledger.get(key, 0.0)) - figure) > 1e-8]


# ---- the printed matrix -------------------------------------------------------------------------
RESULTS: dict[tuple[str, str], dict[str, str]] = {}  # (venue, fault) -> step -> holding | FAILED | n/a


def record(venue: str, fault: str, step: str, outcome: str) -> None:
    RESULTS.setdefault((venue, fault), {})[step] = outcome


def render() -> list[str]:
    """The matrix as text lines: one table per venue (rows = faults, columns = :data:`STEPS`), then one per perp
    pair ``"<first>+<second>"`` (columns = :data:`PAIR_STEPS`, tests/test_xvenue_perp_perp_fault_matrix.py)."""
    lines: list[str] = []
    pairs = sorted({v for v, _f in RESULTS if "+" in v})
    for venue in ("binance", "bybit", "okx", *pairs):
        rows = [(f, cells) for (v, f), cells in RESULTS.items() if v == venue]
        if not rows:
            continue
        steps = PAIR_STEPS if "+" in venue else STEPS
        cw = max(12, *(len(s) + 2 for s in steps))
        w = max(len(venue), *(len(f) for f, _ in rows)) + 2
        lines.append(f"{venue}".ljust(w) + "".join(s.ljust(cw) for s in steps))
        for fault, cells in rows:
            lines.append(fault.ljust(w) + "".join(cells.get(s, "not run").ljust(cw) for s in steps))
        lines.append("")
    return lines
