"""The fast path's codes and records: every transition a kernel can emit is legal in the engine's
table, every refusal code has a message, every record field is packed and read by name, and the
kernel is chosen through the Strategy protocol."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hedge_core.backtest import fast
from hedge_core.backtest.fast import codes, records, transitions
from hedge_core.backtest.fast.codes import ERROR_MESSAGES, Err, St, Tr
from hedge_core.backtest.fast.scope import FastPathUnsupported, check_supported, kernel_of
from hedge_core.engine.states import TRANSITIONS as ENGINE_TABLE
from hedge_core.engine.states import State, Trigger
from hedge_core.engine.strategies import register, unregister
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.errors import IllegalTransition
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import CarryParams, CrossHedgeParams, ExitParams, GridParams, VolTierLoanParams
from hedge_core.params.xcarry import CrossCarryParams

PKG = Path(fast.__file__).parent
KERNEL_SOURCES = {p.stem: p.read_text() for p in PKG.glob("*.py")
                  if p.stem in ("hedge_kernel", "voltier_kernel", "pair_kernel", "helpers")}


def _emitted(prefix: str) -> set[str]:
    """Member names ``prefix.X`` the kernel sources write (what they can emit)."""
    return {m for src in KERNEL_SOURCES.values() for m in re.findall(rf"\b{prefix}\.([A-Z_]+)\b", src)}


def test_every_transition_the_kernels_emit_is_legal_in_the_engine_table():
    emitted = _emitted("Tr")
    # the kernels write these codes (a code added to a kernel and not mapped fails here)
    assert emitted == {"ENTRY", "EXIT_REARM", "EXIT_DONE", "FLATTEN", "FLATTEN_IDLE", "REBAL", "REDUCE",
                       "REDUCE_EXIT_REARM", "REDUCE_EXIT_DONE", "REDUCE_FLATTEN", "HEDGE_FAILED",
                       "ENTRY_FAILED"}
    assert {t.name for t in Tr} == emitted
    for name in emitted:
        rows = fast.TRANSITIONS[Tr[name]]
        assert rows, name
        for k, (fr, to, trig) in enumerate(rows):
            # read the engine's table directly: (from, trigger) must be a key and lead to ``to``
            assert ENGINE_TABLE[(State(fr), Trigger(trig))] is State(to), (name, fr, trig, to)
            if k:
                assert rows[k - 1][1] == fr, f"{name}: the path is not contiguous at {fr}"


def test_each_transition_code_ends_in_the_state_the_kernel_records():
    # the kernels' resting states: what the snapshot's state column says after the code
    assert fast.TRANSITIONS[Tr.ENTRY][-1][1] == "MONITORING_POSITIONS" == codes.STATE_NAMES[St.MONITORING]
    assert fast.TRANSITIONS[Tr.EXIT_REARM][-1][1] == "ANALYZING_MARKET" == codes.STATE_NAMES[St.ANALYZING]
    for t in (Tr.EXIT_DONE, Tr.FLATTEN, Tr.FLATTEN_IDLE):
        assert fast.TRANSITIONS[t][-1] == ("CLOSING_POSITIONS", "COMPLETED", "FLAT")
    assert [r[2] for r in fast.TRANSITIONS[Tr.REBAL]] == ["DRIFT_EXCEEDED", "REBALANCED"]
    assert fast.TRANSITIONS[Tr.FLATTEN_IDLE][0] == ("ANALYZING_MARKET", "CLOSING_POSITIONS", "FLATTEN")
    # an entry whose hedge the venue rejected: the spot leg unwound from CLOSING_POSITIONS, done
    assert fast.TRANSITIONS[Tr.HEDGE_FAILED][2:] == (("OPENING_FUTURES_HEDGE", "CLOSING_POSITIONS", "HEDGE_FAILED"),
                                                     ("CLOSING_POSITIONS", "COMPLETED", "FLAT"))
    # a REDUCE, then an exit or a flatten at the same instant: both leave from REBALANCING
    for t, trig, end in ((Tr.REDUCE_EXIT_REARM, "EXIT_SIGNAL", St.ANALYZING), (Tr.REDUCE_EXIT_DONE, "EXIT_SIGNAL",
                                                                              St.COMPLETED),
                         (Tr.REDUCE_FLATTEN, "FLATTEN", St.COMPLETED)):
        rows = fast.TRANSITIONS[t]
        assert rows[0] == ("MONITORING_POSITIONS", "REBALANCING", "RISK_REDUCE")
        assert rows[1] == ("REBALANCING", "CLOSING_POSITIONS", trig) and rows[-1][1] == codes.STATE_NAMES[end]


def test_derivation_refuses_a_path_the_engine_table_does_not_allow():
    with pytest.raises(IllegalTransition, match="COMPLETED"):
        transitions.derive({Tr.ENTRY: (State.COMPLETED, (Trigger.ENTRY_SIGNAL,), St.MONITORING)})
    with pytest.raises(IllegalTransition):  # a rebalance cannot start from ANALYZING
        transitions.derive({Tr.REBAL: (State.ANALYZING_MARKET, (Trigger.DRIFT_EXCEEDED,), St.MONITORING)})
    with pytest.raises(ValueError, match="ENTRY ends in OPENING_SPOT_POSITION"):
        transitions.derive({Tr.ENTRY: (State.ANALYZING_MARKET, (Trigger.ENTRY_SIGNAL,), St.MONITORING)})


def test_every_error_code_has_a_message_and_the_kernels_emit_no_other():
    assert set(ERROR_MESSAGES) == set(Err) - {Err.NONE}
    assert all(isinstance(m, str) and len(m) > 10 for m in ERROR_MESSAGES.values())
    assert len(set(ERROR_MESSAGES.values())) == len(ERROR_MESSAGES)  # distinct reasons
    emitted = _emitted("Err")
    assert {Err[n] for n in emitted} == set(Err)  # every code is reachable in some kernel line, none unknown
    assert fast.ERRORS[3] == ERROR_MESSAGES[Err.PAPER_LIQUIDATION]  # the int-keyed view
    assert list(Err)[1:] == [Err(k) for k in range(1, 16)]  # codes 1..13 as before the split; 14-15: the pair kernel


def test_records_refuse_missing_and_unknown_fields():
    full = {n: 0.0 for n in records.HEDGE_RECORD.names}
    rec = records.make_record(records.HEDGE_RECORD, {**full, "stop_loss_pct": 0.05, "kind": 2})
    assert rec.shape == (1,) and rec[0]["stop_loss_pct"] == 0.05 and rec[0]["kind"] == 2
    missing = dict(full)
    del missing["notional"]
    with pytest.raises(ValueError, match=r"missing \['notional'\]"):
        records.make_record(records.HEDGE_RECORD, missing)
    with pytest.raises(ValueError, match=r"unknown \['notionl'\]"):
        records.make_record(records.HEDGE_RECORD, {**full, "notionl": 1.0})


def test_every_record_field_is_documented_and_read_by_its_kernel():
    # HEDGE_RECORD feeds the hedge kernel and the pair kernel: every field is read by one of them
    hedge_src = KERNEL_SOURCES["hedge_kernel"] + KERNEL_SOURCES["pair_kernel"]
    for dt, src in ((records.HEDGE_RECORD, hedge_src), (records.VOLTIER_RECORD, KERNEL_SOURCES["voltier_kernel"])):
        read = set(re.findall(r"\br\.([a-z_0-9]+)", src))
        assert read == set(dt.names), (set(dt.names) - read, read - set(dt.names))
        assert all(records.FIELD_DOCS[n] for n in dt.names)
    # deferred exits: both kernels read the window; the loan book's kernel does not, and scope refuses it there
    for k in ("hedge_kernel", "pair_kernel"):
        assert "exit_defer_s" in set(re.findall(r"\br\.([a-z_0-9]+)", KERNEL_SOURCES[k])), k
    check_supported(CarryParams(exit=ExitParams(defer_within_s_of_funding=900)), PaperConfig())
    with pytest.raises(FastPathUnsupported, match="defer_within_s_of_funding"):
        check_supported(VolTierLoanParams(exit=ExitParams(defer_within_s_of_funding=900)), PaperConfig())


def test_an_order_rate_limit_above_the_kernels_ring_is_refused_naming_it():
    """The kernels count the last ``ORDER_RING`` orders: a higher limit would never hold an order in a kernel while
    the engine holds it, so it is refused (the default, 20, runs)."""
    from hedge_core.params.models import GuardParams
    for src in KERNEL_SOURCES.values():
        assert "% 64" not in src and "np.full(64" not in src  # every ring is ORDER_RING long
    check_supported(CarryParams(guards=GuardParams(max_orders_per_minute=codes.ORDER_RING)), PaperConfig())
    with pytest.raises(FastPathUnsupported, match=f"guards.max_orders_per_minute above {codes.ORDER_RING}"):
        check_supported(CarryParams(guards=GuardParams(max_orders_per_minute=codes.ORDER_RING + 1)), PaperConfig())


def test_pack_hedge_puts_each_parameter_in_its_named_field():
    from hedge_core.backtest.event import BacktestConfig, _balances
    from hedge_core.backtest.fast.pack import pack_hedge
    from hedge_core.backtest.timeline import build_timeline, market_from_frames
    from hedge_core.data.demo import generate_demo_market
    from hedge_core.params.models import ExitParams, RebalanceParams

    tl = build_timeline(market_from_frames(generate_demo_market(days=5, timeframe="1h", seed=5, assets=("BTC",))))
    p = CarryParams(notional=5_000.0, exit=ExitParams(stop_loss_pct=0.07, profit_target_pct=None),
                    rebalance=RebalanceParams(target_ratio=0.9, ratio_min=0.5, ratio_max=1.2, drift_threshold=0.07))
    cfg = BacktestConfig()
    r = pack_hedge(p, cfg.paper, tl, _balances(p, cfg, tl.first_spot_price))[0]
    assert r["notional"] == 5_000.0 and r["stop_loss_pct"] == 0.07 and np.isnan(r["profit_target_pct"])
    assert r["ratio0"] == 0.9 and r["ratio_min"] == 0.5 and r["drift_threshold"] == 0.07
    assert r["kind"] == codes.Kind.CARRY and r["same_base"] == 1 and np.isnan(r["grid_var_limit"])
    assert r["perp_taker_fee"] == cfg.paper.perp_taker_fee and r["spot_taker_fee"] == cfg.paper.spot_taker_fee
    # one venue: the spot leg's slippage model is the venue's; two (spot_paper=): the spot venue's
    assert (r["s_slippage_bps"], r["s_impact_k_bps"]) == (cfg.paper.slippage_bps, cfg.paper.impact_k_bps)
    assert np.isnan(r["exit_defer_s"])
    from dataclasses import replace

    other = replace(cfg.paper, slippage_bps=7.5, impact_k_bps=33.0)
    p2 = p.model_copy(update={"exit": ExitParams(defer_within_s_of_funding=900)})
    r2 = pack_hedge(p2, cfg.paper, tl, _balances(p, cfg, tl.first_spot_price), spot_paper=other)[0]
    assert (r2["s_slippage_bps"], r2["s_impact_k_bps"]) == (7.5, 33.0) and r2["exit_defer_s"] == 900.0
    assert (r2["slippage_bps"], r2["impact_k_bps"]) == (cfg.paper.slippage_bps, cfg.paper.impact_k_bps)


class _OwnStrategy(StrategyBase):
    name = "own_hedge"
    fast_kernel = "hedge"  # claims the hedge kernel, but that kernel only models carry / xcarry / cross / grid


class _NoKernel(StrategyBase):
    name = "own_slow"
    fast_kernel = None


def test_the_kernel_is_chosen_through_the_strategy_protocol():
    assert kernel_of(CarryParams()) == kernel_of(CrossHedgeParams()) == kernel_of(GridParams()) == "hedge"
    assert kernel_of(CrossCarryParams()) == "hedge"  # the carry's branch with exit_below_apr (fast.xvenue)
    assert kernel_of(VolTierLoanParams()) == "voltier"
    register(_OwnStrategy())
    register(_NoKernel())
    try:
        p = CarryParams().model_copy(update={"strategy": "own_hedge"})
        with pytest.raises(FastPathUnsupported, match="'own_hedge' declares fast_kernel 'hedge'"):
            check_supported(p, PaperConfig())
        with pytest.raises(FastPathUnsupported, match="strategy 'own_slow' has no fast kernel"):
            check_supported(CarryParams().model_copy(update={"strategy": "own_slow"}), PaperConfig())
    finally:
        unregister("own_slow")
        unregister("own_hedge")
