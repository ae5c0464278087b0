"""Numba only when it pays: jitable money functions and kernels that do not import numba up front.

Importing numba and loading a cached kernel costs 0.5-1 s of process start-up (numba's import,
then its typing and target contexts on the first dispatch). A short run - a one-month backtest
of hourly bars, a CLI call, a panel page - never recovers that, so nothing here imports numba
until something needs compiled code:

- :func:`jitable` replaces ``numba.extending.register_jitable`` for the scalar money formulas:
  the function stays the plain Python function, and it is registered with numba (so ``@njit``
  kernels can call it and inline it) the moment numba is imported by anyone (a post-import hook,
  ``wrapt.register_post_import_hook``), before any kernel can be compiled.
- :func:`lazy_njit` replaces ``@njit(cache=True, ...)`` for array kernels called from Python: a
  call whose sized argument is shorter than ``min_size`` runs the same lines as plain Python; a
  larger call (and every call once the kernel is built) runs the compiled kernel, built or loaded
  from numba's on-disk cache on first use. The two forms compute the same IEEE operations in the
  same order (numba compiles without fast-math), so the results are identical bit for bit;
  ``tests/test_lazyjit.py`` checks each kernel's two forms against each other.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import wrapt

__all__ = ["LazyKernel", "jitable", "lazy_njit"]

F = TypeVar("F", bound=Callable[..., Any])

_PENDING: list[Callable[..., Any]] = []


def _register_pending(_numba: object | None = None) -> None:
    from numba.extending import register_jitable

    while _PENDING:
        register_jitable(_PENDING.pop(0))


def jitable(fn: F) -> F:
    """Mark a scalar function as callable from ``@njit`` code (``register_jitable`` once numba loads).

    Returns ``fn`` itself: called from Python it is the plain function (no dispatch overhead).
    """
    _PENDING.append(fn)
    if "numba" in sys.modules:
        _register_pending()
    return fn


wrapt.register_post_import_hook(_register_pending, "numba")


class LazyKernel:
    """A kernel that is plain Python below ``min_size`` and ``@njit`` (built on first need) above.

    Parameters
    ----------
    fn : callable
        The kernel's Python source (numba-compatible).
    size_arg : int
        Position of the argument whose ``len()`` sizes the call.
    min_size : int
        Smallest size run compiled while the kernel is not built yet.
    options : dict
        ``numba.njit`` options (``cache=True`` etc.).
    """

    def __init__(self, fn: Callable[..., Any], size_arg: int, min_size: int, options: dict[str, Any]) -> None:
        functools.update_wrapper(self, fn)
        self.py_func = fn
        self.size_arg = size_arg
        self.min_size = min_size
        self.options = options
        self._compiled: Callable[..., Any] | None = None

    @property
    def compiled(self) -> Callable[..., Any]:
        """The numba dispatcher (imports numba and builds it on first access)."""
        if self._compiled is None:
            from numba import njit

            self._compiled = njit(**self.options)(self.py_func)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None and len(args[self.size_arg]) < self.min_size:
            return self.py_func(*args)
        return self.compiled(*args)


def lazy_njit(*, size_arg: int = 0, min_size: int = 20_000, **options: Any) -> Callable[[Callable[..., Any]], LazyKernel]:
    """Decorator: ``@lazy_njit(cache=True)`` instead of ``@njit(cache=True)`` (see :class:`LazyKernel`).

    ``min_size`` (elements of argument ``size_arg``): below it, and while the compiled kernel is not
    built yet, the Python form runs; 20,000 elements is where a simple O(N) loop in Python (~20-60 ms)
    starts to cost as much as importing numba and loading a cached kernel.
    """
    def deco(fn: Callable[..., Any]) -> LazyKernel:
        return LazyKernel(fn, size_arg, min_size, options)
    return deco
