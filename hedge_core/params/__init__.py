"""Parameter sets: typed models (:mod:`.models`), files, provenance and promotion (:mod:`.store`), the CLI.

The models are re-exported here (``from hedge_core.params.models import CarryParams``).
"""

from hedge_core.params.models import *  # noqa: F403
from hedge_core.params.models import __all__  # noqa: F401
