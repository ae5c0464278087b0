"""Pick the analyzer from the environment (never from a file: the key is a secret).

``HEDGE_ADVISOR`` ``rules`` (default) | ``llm``; for ``llm``: ``HEDGE_ADVISOR_URL`` (http(s) base URL,
required), ``HEDGE_ADVISOR_MODEL`` (required), ``HEDGE_ADVISOR_KEY`` (optional bearer key),
``HEDGE_ADVISOR_TIMEOUT_S`` (seconds, 0 < s <= 300, default 10). ``HEDGE_ADVISOR_INTERVAL_S``
(seconds between two opinions per hedge, 1 <= s <= 86400, default 60).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from urllib.parse import urlparse

from hedge_core.advice.llm import LLMAnalyzer
from hedge_core.advice.model import Analyzer
from hedge_core.advice.rules import RuleAnalyzer
from hedge_core.errors import InvalidInput

__all__ = ["advisor_from_env", "interval_from_env"]


def _seconds(env: Mapping[str, str], var: str, default: float, lo: float, hi: float, lo_open: bool) -> float:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        raise InvalidInput(var, raw, f"seconds in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return v


def interval_from_env(env: Mapping[str, str] | None = None) -> float:
    """``HEDGE_ADVISOR_INTERVAL_S`` in seconds (default 60); :class:`InvalidInput` if out of [1, 86400]."""
    return _seconds(os.environ if env is None else env, "HEDGE_ADVISOR_INTERVAL_S", 60.0, 1.0, 86400.0, False)


def advisor_from_env(env: Mapping[str, str] | None = None) -> Analyzer:
    """The configured analyzer; :class:`InvalidInput` naming the variable when the setting is bad."""
    e = os.environ if env is None else env
    kind = e.get("HEDGE_ADVISOR", "").strip().lower() or "rules"
    if kind == "rules":
        return RuleAnalyzer()
    if kind != "llm":
        raise InvalidInput("HEDGE_ADVISOR", kind, '"rules" or "llm"')
    url = e.get("HEDGE_ADVISOR_URL", "").strip()
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise InvalidInput("HEDGE_ADVISOR_URL", url, "an http(s) base URL such as http://127.0.0.1:11434/v1")
    model = e.get("HEDGE_ADVISOR_MODEL", "").strip()
    if not model:
        raise InvalidInput("HEDGE_ADVISOR_MODEL", model, "the model name the endpoint serves")
    timeout = _seconds(e, "HEDGE_ADVISOR_TIMEOUT_S", 10.0, 0.0, 300.0, True)
    return LLMAnalyzer(url, model, e.get("HEDGE_ADVISOR_KEY") or None, timeout)
