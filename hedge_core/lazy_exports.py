"""Package re-exports that load on first use (PEP 562), so a light import of a package stays light.

``hedge_core.backtest`` re-exports :mod:`hedge_core.backtest.event` and ``hedge_core.params`` re-exports
:mod:`hedge_core.params.models`. Done eagerly, importing *any* submodule (``hedge_core.backtest.cli``,
``hedge_core.params.cli``) ran the package ``__init__`` and pulled in pandas, pydantic and the engine,
which made ``hedge --help`` take over a second. With :func:`reexport` the names resolve the same way
(``from hedge_core.params import CarryParams``, ``from hedge_core.backtest import *``), on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["reexport"]


def reexport(package: str, package_file: str, source: str) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` serving the ``__all__`` names of module ``source``.

    ``package_file`` is the package's ``__file__`` (its folder tells submodules apart: asking for one,
    as ``from package import submodule`` does first, raises AttributeError without importing ``source``,
    and the import system then loads the submodule). ``__all__`` itself is served from ``source``.
    """
    here = Path(package_file).parent

    def __getattr__(name: str) -> object:
        if (name.startswith("_") and name != "__all__") or (here / f"{name}.py").exists() or (here / name).is_dir():
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod = importlib.import_module(source)
        names = getattr(mod, "__all__", ())
        if name == "__all__":
            return list(names)
        if name in names:
            return getattr(mod, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
