"""What the fast path refuses up front, and the error it refuses with.

A run is accepted only when every behaviour it can meet is one the kernels reproduce exactly
(``docs/fast-path.md`` lists what is refused and why); the caller then runs the event-driven
backtester (:func:`~hedge_core.backtest.fast.run_fast_or_event` does that by itself).
"""

from __future__ import annotations

from hedge_core.analytics.risk import brackets_for
from hedge_core.backtest.fast.codes import DEFERS_EXITS, KERNELS, ORDER_RING
from hedge_core.engine.strategies import strategy_for
from hedge_core.params.models import StrategyParamsBase
from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.types import MarginMode, PositionMode

__all__ = ["FastPathUnsupported", "check_supported", "kernel_of"]


class FastPathUnsupported(HedgeError):
    """The fast path cannot reproduce this run exactly; use the event-driven backtester."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"fast path refuses this run: {reason}; use hedge_core.backtest.event.run_backtest "
                         f"(the event-driven path) instead")
        self.reason = reason


def kernel_of(params: StrategyParamsBase) -> str:
    """The name of the strategy's fast kernel (``Strategy.fast_kernel``: ``"hedge"`` or ``"voltier"``).

    Raises
    ------
    FastPathUnsupported
        The strategy declares no kernel (``fast_kernel is None``), no strategy of that name is
        registered, or the kernel it names does not model it (``codes.KERNELS``: a kernel
        reproduces the decisions of the strategies it was written for, not another one's ``decide``).
    """
    strat = getattr(params, "strategy", None)
    try:
        kernel = strategy_for(params).fast_kernel
    except InvalidInput:
        kernel = None
    if kernel is None:
        raise FastPathUnsupported(f"strategy {strat!r} has no fast kernel")
    if strat not in KERNELS.get(kernel, ()):
        models = {k: sorted(v) for k, v in KERNELS.items()}
        raise FastPathUnsupported(f"strategy {strat!r} declares fast_kernel {kernel!r}, but the kernels model "
                                  f"only {models}")
    return kernel


def check_supported(params: StrategyParamsBase, paper: PaperConfig, perp_symbol: str | None = None, *,
                    defers_exits: bool = False) -> None:
    """Raise :class:`FastPathUnsupported` when the parameters or venue model are outside the kernel's scope.

    The strategy must declare a fast kernel (the ``Strategy`` protocol's ``fast_kernel``). With
    ``perp_symbol``, the perp must have a bracket table - its instrument's own
    (``Instrument.brackets``: the store's or the venue's) or the committed default - and the paper
    venue must use that same table: the kernel reads ONE table for the engine's guard and leverage
    rule (``guards.leg_brackets``: the instrument's own, else the default) and for the venue's
    maintenance margin (``PaperConfig.brackets`` first), so a venue table that is not the
    instrument's is refused. ``exit.defer_within_s_of_funding`` is modelled by the hedge and pair kernels
    (``codes.DEFERS_EXITS``) and refused for the others unless ``defers_exits`` says the caller's kernel models it.
    """
    kernel = kernel_of(params)
    why = []
    if getattr(params, "allow_spot_short", False):
        why.append("allow_spot_short=True (spot short on margin)")
    if getattr(params, "enter_within_s_of_funding", None) is not None:
        why.append("enter_within_s_of_funding")
    a = params.activation
    if a.deviation_z is not None or a.volume_spike is not None:
        why.append("activation triggers")
    if params.exit.defer_within_s_of_funding is not None and not (defers_exits or kernel in DEFERS_EXITS):
        why.append("exit.defer_within_s_of_funding")
    g = params.guards
    if g.daily_loss_limit is not None:
        why.append("guards.daily_loss_limit")
    if g.heartbeat_timeout_s is not None:
        why.append("guards.heartbeat_timeout_s")
    if g.max_orders_per_minute > ORDER_RING:
        why.append(f"guards.max_orders_per_minute above {ORDER_RING} (the kernels count the last {ORDER_RING} orders)")
    if params.leverage.margin_mode != MarginMode.ISOLATED:
        why.append("cross margin")
    if params.leverage.target_vol is not None:
        why.append("leverage.target_vol")
    if paper.participation is not None:
        why.append("paper participation cap")
    if paper.slippage_noise_bps > 0:
        why.append("paper slippage noise")
    if paper.position_mode != PositionMode.ONE_WAY:
        why.append("paper hedge position mode")
    if perp_symbol is not None:
        own = next((i.brackets for i in paper.instruments if i.symbol == perp_symbol and i.brackets), ())
        venue = paper.brackets.get(perp_symbol)
        if venue is not None and tuple(venue) != tuple(own):
            why.append(f"custom paper brackets for {perp_symbol} (not the instrument's own table)")
        if not own:
            try:
                brackets_for(perp_symbol)
            except InvalidInput:
                why.append(f"no bracket table for {perp_symbol}")
    if why:
        raise FastPathUnsupported(", ".join(why))
