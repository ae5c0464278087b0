"""Reading a parameter mapping into its typed model: TOML values (``"off"`` is None), and validation errors
that name the field, the value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from hedge_core.errors import InvalidInput
from hedge_core.params.models import StrategyParams, StrategyParamsBase
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["OFF", "STRATEGY_NAMES", "parse", "validation_error"]

OFF = "off"
#: Every strategy a parameter set may name (the store lists, saves and promotes all of them).
STRATEGY_NAMES: tuple[str, ...] = ("carry", "cross", "voltier", "grid", "xcarry")
# the models' union plus the cross-venue carry (its model derives from CarryParams in its own module)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Annotated[StrategyParams | CrossCarryParams,  # type: ignore[valid-type]
                                                   Field(discriminator="strategy")])


def _to_toml_value(v: Any) -> Any:
    if v is None:
        return OFF
    if isinstance(v, dict):
        return {k: _to_toml_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_toml_value(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _from_toml_value(v: Any) -> Any:
    if isinstance(v, str) and v == OFF:
        return None
    if isinstance(v, dict):
        return {k: _from_toml_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_toml_value(x) for x in v]
    return v


def _allowed_from_error(err: Mapping[str, Any], model: Any, loc: tuple[Any, ...]) -> str:
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        known = _known_fields(model, loc[:-1])
        return f"a known field ({', '.join(known)})" if known else "no such field (unknown fields are rejected)"
    bounds = [f"{sym} {ctx[k]}" for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if k in ctx]
    desc = _field_description(model, loc)
    if bounds:
        return " and ".join(bounds) + (f" ({desc})" if desc else "")
    msg = str(err.get("msg", "a valid value"))
    return msg[0].lower() + msg[1:] + (f" ({desc})" if desc else "")


def _unknown_field(allowed: str) -> bool:
    """Whether an ``allowed`` text of :func:`_allowed_from_error` is the unknown-field one (a field
    the model does not have; a file from an older release when the model lost it)."""
    return allowed.startswith(("a known field", "no such field"))


def _model_at(model: Any, loc: Sequence[Any]) -> Any:
    cur = model
    for part in loc:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        f = cur.model_fields.get(str(part))
        if f is None:
            return None
        cur = f.annotation
    return cur


def _known_fields(model: Any, loc: Sequence[Any]) -> list[str]:
    m = _model_at(model, loc)
    if isinstance(m, type) and issubclass(m, BaseModel):
        return list(m.model_fields)
    return []


def _field_description(model: Any, loc: Sequence[Any]) -> str:
    if not loc:
        return ""
    parent = _model_at(model, loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        f = parent.model_fields.get(str(loc[-1]))
        if f is not None and f.description:
            return f.description
    return ""


def _model_for(data: Any) -> Any:
    from hedge_core.params.models import (
        CarryParams,
        CrossHedgeParams,
        GridParams,
        VolTierLoanParams,
    )

    by = {"carry": CarryParams, "cross": CrossHedgeParams, "voltier": VolTierLoanParams, "grid": GridParams,
          "xcarry": CrossCarryParams}
    return by.get(data.get("strategy")) if isinstance(data, Mapping) else None


def validation_error(exc: ValidationError, data: Any, *, where: str | None = None) -> InvalidInput:
    """Translate a pydantic error into :class:`InvalidInput` naming field, value and what is allowed.

    The first error is the headline; every error is kept in ``.errors`` as
    ``(field, value, allowed)`` and listed in the message.
    """
    model = _model_for(data)
    errs: list[tuple[str, Any, str]] = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        if model is not None and loc and loc[0] == model.model_fields["strategy"].default:
            loc = loc[1:]  # the discriminated union prefixes the tag
        fld = ".".join(str(p) for p in loc) or "params"
        errs.append((fld, e.get("input"), _allowed_from_error(e, model, loc)))
    if not errs:
        errs = [("params", data, str(exc))]
    f0, v0, a0 = errs[0]
    if len(errs) > 1:
        a0 += "; also: " + "; ".join(f"{f}={v!r}: expected {a}" for f, v, a in errs[1:])
    out = InvalidInput(f0, v0, a0, where=where)
    out.errors = errs  # type: ignore[attr-defined]
    return out


def parse(data: Mapping[str, Any], *, where: str | None = None) -> StrategyParamsBase:
    """Validate a plain mapping (``strategy`` tag + fields) into its params model.

    Raises
    ------
    InvalidInput
        Naming the field, the value and what is allowed (unknown fields, wrong types, bounds,
        cross-field rules).
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("params", type(data).__name__, "a table of parameters", where=where)
    if data.get("strategy") not in STRATEGY_NAMES:
        raise InvalidInput("strategy", data.get("strategy"), "one of " + ", ".join(map(repr, STRATEGY_NAMES)),
                           where=where)
    try:
        return _ADAPTER.validate_python(_from_toml_value(dict(data)))
    except ValidationError as exc:
        raise validation_error(exc, data, where=where) from None

