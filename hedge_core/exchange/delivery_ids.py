"""The client order id that marks a venue's DELIVERY of a dated future in a trade list: the paper venue's own
delivery fill (``hedge_core.exchange.paper.delivery``) and the fills the live adapter builds from a venue's delivery
records (``hedge_core.exchange.ccxt.delivery``). The driver books such a fill only as a delivery
(``HedgeDriver._deliveries``), never as an ordinary external fill."""

from __future__ import annotations

__all__ = ["DELIVERY_CID_PREFIX", "is_delivery_fill"]

#: Client order id prefix of a delivery fill (the venue's own close, not an order of the hedge).
DELIVERY_CID_PREFIX = "dlv-"


def is_delivery_fill(client_order_id: str | None) -> bool:
    """Whether a fill's client order id marks a venue's delivery of a dated future."""
    return bool(client_order_id) and str(client_order_id).startswith(DELIVERY_CID_PREFIX)
