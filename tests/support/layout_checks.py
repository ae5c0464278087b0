"""Checks of the repository's layout rules, read from the source (``ast``), never by importing it.

Used by ``tests/test_layout.py`` on the real tree and on small fake trees (each check is shown to fail
on a seeded violation). The rules (``/work/shared/ARCHITECTURE.md``, issue #13):

- :func:`long_modules`: no Python module over ``limit`` lines (800).
- :func:`import_graph` + :func:`find_cycle`: no import circle between modules, and
  :func:`package_graph`: none between the package's top-level subpackages/modules. Only imports that
  run when a module is imported count: module level (also inside module-level ``if``/``try``/``with``
  and class bodies), not inside functions, not under ``if TYPE_CHECKING:``.
- :func:`funding_copies`: the funding payment product ``qty x mark x rate`` (or ``notional x rate``)
  written outside ``hedge_core/money/``.
- :func:`imports_of_test_modules`: a test module (``test_*.py``, ``conftest.py``) imported by another module
  under ``tests/`` (shared helpers belong in ``tests/support/``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path

__all__ = ["find_cycle", "funding_copies", "import_graph", "long_modules", "package_graph", "parse", "python_files",
           "e2e_files", "helpers_outside_support", "imports_of_test_modules", "runner_starting_tests"]

_SKIP_DIRS = {"__pycache__", ".venv", ".git", "node_modules", ".ipynb_checkpoints"}


@lru_cache(maxsize=4096)
def _parse_cached(path: str, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(Path(path).read_text(encoding="utf-8"), path)


def parse(f: Path) -> ast.Module:
    """The module's syntax tree (parsed once per file version in a test session)."""
    st = f.stat()
    return _parse_cached(str(f), st.st_mtime_ns, st.st_size)


def python_files(root: Path, paths: Iterable[str]) -> Iterator[Path]:
    """Every ``*.py`` under each of ``paths`` (directories or files, relative to ``root``), sorted."""
    for p in paths:
        full = root / p
        if full.is_file():
            yield full
        elif full.is_dir():
            for f in sorted(full.rglob("*.py")):
                if not _SKIP_DIRS.intersection(f.relative_to(root).parts):
                    yield f


def long_modules(root: Path, paths: Iterable[str], limit: int = 800,
                 allowed: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """(path relative to ``root``, lines) of every module over ``limit`` lines (lines as ``wc -l`` counts
    them: newline characters), except the paths in ``allowed`` (path -> why)."""
    allowed = allowed or {}
    out = []
    for f in python_files(root, paths):
        rel = f.relative_to(root).as_posix()
        n = f.read_bytes().count(b"\n")
        if n > limit and rel not in allowed:
            out.append((rel, n))
    return out


# ---- imports ------------------------------------------------------------------------------------------
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (see the module docstring)."""
    for s in body:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            yield s
        elif isinstance(s, ast.If):
            if not _is_type_checking(s.test):
                yield from _import_time(s.body)
            yield from _import_time(s.orelse)
        elif isinstance(s, ast.Try):
            for b in (s.body, s.orelse, s.finalbody, *(h.body for h in s.handlers)):
                yield from _import_time(b)
        elif isinstance(s, (ast.With, ast.AsyncWith, ast.For, ast.While)):
            yield from _import_time(s.body)
        elif isinstance(s, ast.ClassDef):  # a class body runs at import
            yield from _import_time(s.body)


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module of ``package``."""
    out = {}
    for f in python_files(root, [package]):
        parts = list(f.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool, known: Mapping[str, object]) -> list[str]:
    """The modules an import statement loads (``from a import b``: ``a.b`` when it is a module, else ``a``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    return [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports at import time (module level; see the docstring)."""
    mods = _modules(root, package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, (f, is_pkg) in mods.items():
        for node in _import_time(parse(f).body):
            for t in _targets(node, m, is_pkg, mods):
                while t not in mods and "." in t:  # ``import a.b.name``: the deepest module
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != m:
                    graph[m].add(t)
    return graph


def package_graph(graph: Mapping[str, set[str]], package: str) -> dict[str, set[str]]:
    """The module graph folded onto ``package``'s top-level parts (``hedge_core.engine.step`` -> ``engine``,
    ``hedge_core.store`` -> ``store``); the package's own ``__init__`` is left out."""
    def part(m: str) -> str | None:
        bits = m.split(".")
        return bits[1] if len(bits) > 1 and bits[0] == package else None

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        pa = part(a)
        if pa is None:
            continue
        out.setdefault(pa, set())
        for b in targets:
            pb = part(b)
            if pb is not None and pb != pa:
                out[pa].add(pb)
                out.setdefault(pb, set())
    return out


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import circle as a path ``[a, b, ..., a]`` (deterministic: sorted order), None when there is none."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = GREY
        stack.append(n)
        for w in sorted(graph.get(n, ())):
            c = colour.get(w, WHITE)
            if c == GREY:
                return stack[stack.index(w):] + [w]
            if c == WHITE:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None


# ---- the funding payment formula ------------------------------------------------------------------------
# A funding payment is ``-qty x mark x rate`` (hedge_core.money.perp.funding_payment). A copy is a product
# (one chain of ``*``, any grouping, any sign) with a funding-rate factor and either a quantity and a price
# factor or a notional factor; factors are named by their identifier (``ev.rate`` -> ``rate``,
# ``row["mark_price"]`` -> ``mark_price``). Rates of other things (fees, interest, ...) are not funding.
_RATE = re.compile(r"rate", re.I)
_NOT_FUNDING_RATE = re.compile(r"fee|maker|taker|interest|borrow|loan|slip|particip|fill|hit|win|sample|learn|"
                               r"tax|mmr|margin|decay|growth|risk_free|discount|drop|error|hurdle|haircut", re.I)
_PRICE = re.compile(r"mark|price|px", re.I)
_QTY = re.compile(r"^q$|qty|size|pos|amount|units|quantity|^base$", re.I)
_NOTIONAL = re.compile(r"notional|exposure", re.I)


def _factors(n: ast.expr) -> list[ast.expr]:
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
        return _factors(n.left) + _factors(n.right)
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
        return _factors(n.operand)
    return [n]


def _factor_name(n: ast.expr) -> str:
    if isinstance(n, ast.Name):
        return n.id
    if isinstance(n, ast.Attribute):
        return n.attr
    if isinstance(n, ast.Subscript):
        if isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str):
            return n.slice.value
        return _factor_name(n.value)
    return ""


def _is_funding_product(names: list[str]) -> bool:
    if not any(_RATE.search(x) and not _NOT_FUNDING_RATE.search(x) for x in names):
        return False
    price = any(_PRICE.search(x) for x in names)
    qty = any(_QTY.search(x) for x in names)
    return (price and qty) or any(_NOTIONAL.search(x) for x in names)


def _visit_products(n: ast.AST, rel: str, out: list[str], *, in_chain: bool) -> None:
    """Report each product chain once, at its root (``in_chain``: ``n`` is a factor of an enclosing one)."""
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
        if not in_chain and _is_funding_product([_factor_name(x) for x in _factors(n)]):
            out.append(f"{rel}:{n.lineno}: {ast.unparse(n)}")
        _visit_products(n.left, rel, out, in_chain=True)
        _visit_products(n.right, rel, out, in_chain=True)
    elif isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
        _visit_products(n.operand, rel, out, in_chain=in_chain)
    else:
        for c in ast.iter_child_nodes(n):
            _visit_products(c, rel, out, in_chain=False)


def funding_copies(root: Path, paths: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """``path:line: expression`` of every funding product (see above) in ``paths`` outside ``exclude``
    (path prefixes relative to ``root``). Code only: docstrings and comments are not code."""
    skip = tuple(exclude)
    out = []
    for f in python_files(root, paths):
        rel = f.relative_to(root).as_posix()
        if rel.startswith(skip):
            continue
        _visit_products(parse(f), rel, out, in_chain=False)
    return out


# ---- test modules ---------------------------------------------------------------------------------------
def _is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last.endswith("_test") or last == "conftest"


def imports_of_test_modules(root: Path, tests: str = "tests") -> list[str]:
    """``path:line: module`` of every import of a test module (``test_*.py``, ``*_test.py``, ``conftest.py``
    under ``tests``) by a module under ``tests``, anywhere in the file (functions included): ``import
    tests.test_x``, ``from tests.test_x import f``, ``from tests import test_x``, relative ``from .test_x
    import f`` / ``from . import test_x``, and bare ``import test_x`` (``tests`` on ``sys.path``)."""
    mods = _modules(root, tests)
    targets = {m for m in mods if _is_test_module(m)}
    out = []
    for m, (f, is_pkg) in mods.items():
        rel = f.relative_to(root).as_posix()
        for node in ast.walk(parse(f)):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for t in _targets(node, m, is_pkg, mods):
                for cand in (t, f"{tests}.{t}"):  # bare ``import test_x``: the tests folder on sys.path
                    if cand in targets:
                        out.append(f"{rel}:{node.lineno}: {cand}")
                        break
    return out


def helpers_outside_support(root: Path, tests: str = "tests") -> list[str]:
    """Python modules directly under ``tests`` that are neither test modules nor ``conftest.py`` /
    ``__init__.py``: shared helpers belong in ``tests/support/``."""
    return sorted(f.relative_to(root).as_posix() for f in (root / tests).glob("*.py")
                  if not _is_test_module(f.stem) and f.name != "__init__.py")


# a real runner process: the test envs' start_runner(...) (tests/support/runner_env.py, browser.py), a
# ``python -m hedge_core.runner`` of its own, or the CLI's ``hedge runner start``
_RUNNER_START = re.compile(r"""\bstart_runner\(|["']-m["'],\s*["']hedge_core\.runner["']|["']runner["'],\s*["']start["']""")


def runner_starting_tests(root: Path, tests: str = "tests") -> set[str]:
    """Stems of the test modules (``tests/test_*.py``) whose source starts a real runner process."""
    return {f.stem for f in (root / tests).glob("test_*.py") if _RUNNER_START.search(f.read_text())}


def e2e_files(root: Path, tests: str = "tests") -> set[str]:
    """The literal ``E2E_FILES`` set of ``tests/conftest.py`` (read, not imported)."""
    for node in parse(root / tests / "conftest.py").body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "E2E_FILES" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise LookupError(f"no E2E_FILES assignment in {tests}/conftest.py")
