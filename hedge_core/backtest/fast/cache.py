"""numba's on-disk cache of the fast kernels, dropped when any source they compile in changes.

numba keys a compiled function's cache on the function's own source file only. A kernel, though,
compiles in more than its own file: the money formulas of :mod:`hedge_core.money` (inlined), the
``@njit`` helpers of :mod:`.helpers` (another file of this package), the codes of :mod:`.codes` and
the constants of :mod:`hedge_core.engine.constants` (globals frozen at compile time). Without this
module an edited helper or money formula would reach the event engine at once and a kernel only
after the kernel's own file changed.

A stamp file named by the hash of those sources (:func:`inlined_sources`; a kernel module's own
file is left to numba, which watches it) records which version the cached kernels were built
from; on import of the package (:func:`drop_if_sources_changed`) a different hash drops the
compiled files of EVERY module of this package
(``<module stem>.<function>-<line>.<python>.nbi|nbc``, the names numba gives them), so a module
added later is covered without a list to keep up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["KERNEL_STEMS", "drop_if_sources_changed", "drop_stale_kernel_cache", "inlined_sources"]

_HERE = Path(__file__).parent
#: module stems whose compiled kernels are dropped (every module of this package)
KERNEL_STEMS: tuple[str, ...] = tuple(sorted(p.stem for p in _HERE.glob("*.py") if p.stem != "__init__"))
_STAMP = "fast"  # stamp files: fast.sources-<hash>.stamp


def inlined_sources() -> list[Path]:
    """The files compiled into the kernels beyond their own: the modules of this package that a
    module with ``@njit`` code imports from (read from the sources, so a new helper module is
    found), the money package and ``engine/constants.py``. Editing any other module of the package
    (the Python shell: ``run.py``, ``scope.py``, ...) keeps the compiled kernels."""
    from hedge_core import money
    from hedge_core.engine import constants

    used: set[str] = set()
    for p in _HERE.glob("*.py"):
        src = p.read_text()
        if re.search(r"^@njit", src, re.M):  # a module with compiled code
            used |= set(re.findall(r"^from hedge_core\.backtest\.fast\.(\w+) import", src, re.M))
    return [*(_HERE / f"{m}.py" for m in sorted(used)), *sorted(Path(money.__file__).parent.glob("*.py")),
            Path(constants.__file__)]


def drop_stale_kernel_cache(cache_dir: Path, sources: list[Path], stems: Iterable[str] = KERNEL_STEMS) -> bool:
    """Delete the compiled kernels of ``stems`` in ``cache_dir`` when ``sources`` changed since the
    stamp was written. Returns True when it dropped them. I/O errors (a read-only install) leave
    the cache alone."""
    try:
        h = hashlib.sha256()
        for src in sources:
            h.update(src.parent.name.encode() + b"/" + src.name.encode() + b"\0" + src.read_bytes())
        digest = h.hexdigest()[:16]
        stamp = cache_dir / f"{_STAMP}.sources-{digest}.stamp"
        if stamp.exists() or not cache_dir.is_dir():
            return False
        for stem in stems:
            for f in [*cache_dir.glob(f"{stem}.*.nbi"), *cache_dir.glob(f"{stem}.*.nbc")]:
                f.unlink(missing_ok=True)
        for f in [*cache_dir.glob(f"{_STAMP}.sources-*.stamp"), *cache_dir.glob(f"{_STAMP}.money-*.stamp")]:
            f.unlink(missing_ok=True)
        stamp.touch()
        return True
    except OSError:
        return False


def drop_if_sources_changed(kernel: object) -> bool:
    """Apply :func:`drop_stale_kernel_cache` to the cache directory of ``kernel`` (an ``@njit(cache=True)``
    dispatcher of this package; all its modules share that directory) with :func:`inlined_sources`.
    False when numba has no cache there or nothing changed."""
    cache = getattr(kernel, "_cache", None)
    path = getattr(cache, "_cache_path", None)
    if not path:
        return False
    return drop_stale_kernel_cache(Path(path), inlined_sources())
