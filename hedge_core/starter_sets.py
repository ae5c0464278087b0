"""Starter parameter sets: on a first run the panel's "Start a hedge" works at once.

``ensure_starter_sets`` exports one draft set per strategy (the model's defaults, a 1,000 USDT
notional: paper-sized) when the parameter folder holds no set at all. An operator's own sets are
never touched; a folder with any set in it is left alone. Drafts can be paper-traded and
backtested; live trading still needs ``hedge params promote`` (the promotion gate applies).
"""

from __future__ import annotations

import os

from hedge_core.params import store as param_store
from hedge_core.params.models import CarryParams, CrossHedgeParams, GridParams

__all__ = ["STARTERS", "ensure_starter_sets"]

#: name -> (model, notes); notional in quote units (USDT)
STARTERS: dict[str, tuple[type, str]] = {
    "starter-carry": (CarryParams, "funding carry: long spot / short perp while funding pays shorts"),
    "starter-cross": (CrossHedgeParams, "cross hedge: one asset's spot hedged with another's perp"),
    "starter-grid": (GridParams, "grid around a delta-neutral core"),
}
# The loan book (VolTierLoanParams) has no starter: its collateral is now sized from ``start_ltv`` at the
# first price (issue #13), but its 16,200 USDT loan is not paper-sized like the starters' 1,000 USDT.


def ensure_starter_sets(root: str | os.PathLike[str] | None = None, *, notional: float = 1_000.0,
                        db: str | os.PathLike[str] | None = None) -> list[str]:
    """Export the starter sets when the parameter folder has no set; the refs written (``name@1``).

    Parameters
    ----------
    root:
        Parameter folder (default ``$HEDGE_PARAMS_DIR`` or ``data/params``).
    notional:
        Size of each starter set, quote units (USDT), > 0.
    db:
        Store whose ``param_sets`` index is updated (default ``$HEDGE_DB``).
    """
    if not notional > 0:
        from hedge_core.errors import InvalidInput

        raise InvalidInput("notional", notional, "> 0 USDT")
    if param_store.names(root):
        return []
    out = []
    for name, (model, note) in STARTERS.items():
        fields = model.model_fields
        kw = {"notional": notional} if "notional" in fields else {}
        ps = param_store.export(model(**kw), name, created_from="cli", note=f"starter set: {note}", root=root, db=db)
        out.append(ps.ref)
    return out
