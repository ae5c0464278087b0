"""A risk second opinion on a running hedge: pluggable analyzers (docs/risk-advisor.md).

:mod:`.model` holds the input (:class:`RiskInput`), the answer (:class:`Opinion`) and the
:class:`Analyzer` protocol; :mod:`.rules` the built-in deterministic analyzer; :mod:`.llm` an
optional analyzer asking any OpenAI-compatible chat endpoint, falling back to the rules;
:mod:`.config` picks one from the environment.
"""

from hedge_core.advice.config import advisor_from_env
from hedge_core.advice.llm import LLMAnalyzer
from hedge_core.advice.model import Analyzer, Opinion, RiskInput
from hedge_core.advice.rules import RuleAnalyzer

__all__ = ["Analyzer", "LLMAnalyzer", "Opinion", "RiskInput", "RuleAnalyzer", "advisor_from_env"]
