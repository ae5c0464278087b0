"""Parts of the paper venue simulator, split by concern.

:mod:`hedge_core.exchange.paper_core` defines :class:`~hedge_core.exchange.paper_core.PaperCore`
(event application, orders, fills, settings, read views) and re-exports the public names; this
package holds the rest of it:

- :mod:`.config`: :class:`PaperConfig`, :func:`default_instruments`, account constants;
- :mod:`.records`: the mutable position/order records and timestamp (de)serialisers;
- :mod:`.margin`: margin arithmetic, the derived cross/isolated cache, positions view
  (mixin :class:`~.margin._MarginMixin`);
- :mod:`.liquidation`: adverse-extreme liquidation check and execution
  (mixin :class:`~.liquidation._LiquidationMixin`);
- :mod:`.state`: ``state_dict`` / ``from_state`` persistence (mixin :class:`~.state._StateMixin`).

The mixins hold no state of their own; they work on the attributes ``PaperCore.__init__`` sets.
"""
