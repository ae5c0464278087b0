"""The paper venue: a simulator of a spot + USDT-margined perpetual venue.

:mod:`.core` defines :class:`~hedge_core.exchange.paper.core.PaperCore`
(event application, orders, fills, settings, read views); :mod:`.exchange` wraps it as the adapter
(:class:`PaperExchange`, with state files). The rest:

- :mod:`.config`: :class:`PaperConfig`, :func:`default_instruments`, account constants;
- :mod:`.records`: the mutable position/order records and timestamp (de)serialisers;
- :mod:`.margin`: margin arithmetic, the derived cross/isolated cache, positions view
  (mixin :class:`~.margin._MarginMixin`);
- :mod:`.checks`: pre-trade checks (position side, reduce-only, bracket cap, margin and spot funds)
  and spot locks (mixin :class:`~.checks._OrderChecksMixin`);
- :mod:`.liquidation`: adverse-extreme liquidation check and execution
  (mixin :class:`~.liquidation._LiquidationMixin`);
- :mod:`.state`: ``state_dict`` / ``from_state`` persistence (mixin :class:`~.state._StateMixin`).

The mixins hold no state of their own; they work on the attributes ``PaperCore.__init__`` sets.
"""

from hedge_core.exchange.paper.core import ACCOUNTS, PaperConfig, PaperCore, default_instruments
from hedge_core.exchange.paper.exchange import PaperExchange, load_state, save_state

__all__ = ["ACCOUNTS", "PaperConfig", "PaperCore", "PaperExchange", "default_instruments", "load_state", "save_state"]
