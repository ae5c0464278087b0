"""Parameter sets: typed models (:mod:`.models`), files, provenance and promotion (:mod:`.store`), the CLI.

The models are re-exported here (``from hedge_core.params.models import CarryParams``).
They load on first use (PEP 562): importing :mod:`.cli` to build ``hedge --help`` does not import pydantic
or pandas.
"""

from hedge_core.lazy_exports import reexport

__getattr__ = reexport(__name__, __file__, "hedge_core.params.models")
