"""An analyzer asking an OpenAI-compatible chat endpoint (local or hosted) for the opinion.

``POST {base_url}/chat/completions`` with ``response_format={"type": "json_object"}`` and
temperature 0; the system prompt states the JSON schema of :class:`~hedge_core.advice.model.Answer`.
The answer is validated strictly (unknown fields refused, ranges checked). On ANY failure
(connection, timeout, HTTP error, not JSON, schema violation) the rule-based opinion is returned,
with a finding saying why the LLM's answer was not used: :meth:`LLMAnalyzer.analyze` never raises.
The bearer key is sent only in the ``Authorization`` header and is redacted from every reason.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import requests
from pydantic import ValidationError

from hedge_core.advice.model import Analyzer, Answer, Opinion, RiskInput
from hedge_core.advice.rules import RuleAnalyzer
from hedge_core.logs import log_event

__all__ = ["SYSTEM_PROMPT", "LLMAnalyzer"]

log = logging.getLogger("hedge_core.advice.llm")

SYSTEM_PROMPT = (
    "You are a risk reviewer for a crypto spot/perpetual hedge. You receive the hedge's figures as JSON "
    "(fractions: liq_distance, liq_distance_reduce, liq_distance_close, drift, funding_rate per period, ltv; "
    "quote currency: pnl, day_pnl, daily_loss_limit; perp_qty > 0 long, < 0 short). Answer with ONE JSON "
    "object and nothing else, exactly these keys: "
    '{"score": integer 0..100 (0 no risk, 100 act now), "level": "ok"|"watch"|"act", '
    '"findings": list of at most 10 strings of at most 200 characters, '
    '"action": "none"|"reduce"|"pause"|"flatten"}. No other keys.')


class LLMAnalyzer:
    """Ask ``{base_url}/chat/completions``; fall back to ``fallback`` (rules) on any failure.

    Parameters
    ----------
    base_url : str
        e.g. ``http://127.0.0.1:11434/v1`` (Ollama) or ``http://127.0.0.1:8080/v1`` (llama.cpp).
    model : str
        The model name the endpoint serves.
    key : str or None
        Optional bearer key (sent as ``Authorization: Bearer``; never logged or shown).
    timeout_s : float
        Seconds for connect and for read, > 0.
    """

    def __init__(self, base_url: str, model: str, key: str | None = None, timeout_s: float = 10.0,
                 fallback: Analyzer | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._key = key or None
        self.timeout_s = timeout_s
        self.fallback: Analyzer = fallback or RuleAnalyzer()
        self.name = f"llm:{model}"

    def __repr__(self) -> str:  # never shows the key
        return f"LLMAnalyzer(base_url={self.base_url!r}, model={self.model!r}, key={'***' if self._key else None})"

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _ask(self, x: RiskInput) -> Answer:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        body = {"model": self.model, "temperature": 0, "response_format": {"type": "json_object"},
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": json.dumps(dataclasses.asdict(x), default=str)}]}
        r = requests.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s)
        r.raise_for_status()
        content = r.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("message content is not a string")
        return Answer.model_validate_json(content)

    def analyze(self, x: RiskInput) -> Opinion:
        """The endpoint's validated opinion, else the fallback's with the reason as a finding."""
        try:
            a = self._ask(x)
            return Opinion(**a.model_dump(), analyzer=self.name)
        except requests.Timeout:
            reason = f"timed out after {self.timeout_s:g} s"
        except requests.HTTPError as exc:
            reason = f"HTTP {exc.response.status_code if exc.response is not None else '?'}"
        except requests.JSONDecodeError:
            reason = "answer is not the expected JSON (the body is not JSON)"
        except requests.RequestException as exc:
            reason = f"connection failed ({type(exc).__name__})"
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:3])
            reason = f"answer refused by the schema ({errs})"
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            reason = f"answer is not the expected JSON ({type(exc).__name__})"
        except Exception as exc:  # noqa: BLE001 - the advisor must never raise into the runner
            reason = f"unexpected {type(exc).__name__}"
        reason = self._redact(reason)[:150]
        log_event(log, "LLM advice not used: rules instead", level=logging.WARNING, hedge_id=x.hedge_id,
                  model=self.model, reason=reason)
        op = self.fallback.analyze(x)
        note = f"LLM answer not used ({self.model}): {reason}"[:200]
        return op.model_copy(update={"findings": (op.findings[:9] + [note]),
                                     "analyzer": f"{op.analyzer} (fallback from {self.name})"[:100]})
