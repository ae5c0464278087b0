"""The repository's layout rules (issue #13, ARCHITECTURE.md): no module over 800 lines, no import circle
(between modules, and between hedge_core's top-level parts), the funding payment formula only in
``hedge_core/money/``, no test module importing another. Each rule is checked on the real tree and its
checker is shown to fail on a seeded violation in a small fake tree. Read from the source: nothing here
imports hedge_core. The checkers live in ``tests/support/layout_checks.py``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.layout_checks import (
    e2e_files,
    find_cycle,
    funding_copies,
    helpers_outside_support,
    import_graph,
    imports_of_test_modules,
    long_modules,
    package_graph,
    runner_starting_tests,
)

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 800
CHECKED = ["hedge_core", "tests", "pages", "bench", "app.py"]
# No allowance: every module is at most LIMIT lines (the fast path became a package).
ALLOWED_LONG: dict[str, str] = {}
MONEY = "hedge_core/money/"
FUNDING_CHECKED = ["hedge_core", "pages", "bench", "app.py"]  # tests compute hand references on purpose


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


# ---- (a) module length ---------------------------------------------------------------------------------
def test_no_module_over_800_lines():
    long = long_modules(ROOT, CHECKED, LIMIT, ALLOWED_LONG)
    assert not long, "modules over %d lines (split them by responsibility): %s" % (
        LIMIT, ", ".join(f"{p} ({n})" for p, n in long))


def test_no_module_is_allowed_to_be_long():
    assert ALLOWED_LONG == {}


def test_length_check_fails_on_a_long_module_and_counts_like_wc(tmp_path):
    root = _tree(tmp_path, {"pkg/ok.py": "x = 1\n" * 800, "pkg/long.py": "x = 1\n" * 801,
                            "app.py": "\n" * 900, "pkg/allowed.py": "\n" * 999})
    found = long_modules(root, ["pkg", "app.py"], 800, {"pkg/allowed.py": "why"})
    assert sorted(found) == [("app.py", 900), ("pkg/long.py", 801)]


# ---- (b) import circles --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hedge_graph() -> dict[str, set[str]]:
    return import_graph(ROOT, "hedge_core")


def test_no_import_circle_between_modules(hedge_graph):
    cycle = find_cycle(hedge_graph)
    assert cycle is None, "module-level import circle: " + " -> ".join(cycle or [])


def test_no_import_circle_between_top_level_parts(hedge_graph):
    cycle = find_cycle(package_graph(hedge_graph, "hedge_core"))
    assert cycle is None, "import circle between hedge_core's parts: " + " -> ".join(cycle or [])


def test_the_import_graph_sees_hedge_cores_real_imports(hedge_graph):
    g = hedge_graph
    # hedge_core/runner/hedge.py: ``from hedge_core.engine.driver import HedgeDriver`` at module level
    assert "hedge_core.engine.driver" in g["hedge_core.runner.hedge"]
    assert "runner" not in package_graph(g, "hedge_core")["advice"]  # the circle broken by hedge_core/logs.py


FAKE_PKG = {
    "pkg/__init__.py": "",
    "pkg/a/__init__.py": "from pkg.a.one import f\n",
    "pkg/a/one.py": "from pkg.b import two\n\ndef f():\n    from pkg.c import three  # deferred: no edge\n",
    "pkg/b/__init__.py": "",
    "pkg/b/two.py": """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from pkg.a import one  # never runs: no edge
        from . import four
        """,
    "pkg/b/four.py": "import os\n",
    "pkg/c/__init__.py": "",
    "pkg/c/three.py": "from pkg.a.one import f\n",
}


def test_import_graph_counts_module_level_imports_only(tmp_path):
    g = import_graph(_tree(tmp_path, FAKE_PKG), "pkg")
    assert g["pkg.a.one"] == {"pkg.b.two"}
    assert g["pkg.b.two"] == {"pkg.b.four"}  # relative import resolved; TYPE_CHECKING skipped
    assert g["pkg.a"] == {"pkg.a.one"}
    assert find_cycle(g) is None
    assert find_cycle(package_graph(g, "pkg")) is None


def test_import_circle_is_found_with_its_path(tmp_path):
    files = dict(FAKE_PKG)
    files["pkg/b/four.py"] = "class K:\n    from pkg.a import one  # a class body runs at import\n"
    g = import_graph(_tree(tmp_path, files), "pkg")
    cycle = find_cycle(g)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"pkg.a.one", "pkg.b.two", "pkg.b.four"}
    assert all(b in g[a] for a, b in zip(cycle, cycle[1:]))  # each step is a real edge


def test_package_circle_is_found_between_parts(tmp_path):
    files = dict(FAKE_PKG)
    files["pkg/c/__init__.py"] = "try:\n    from pkg.b import two\nexcept ImportError:\n    pass\n"
    files["pkg/b/four.py"] = "from pkg.c import three\n"  # b -> c (module level), c -> a, a -> b
    g = import_graph(_tree(tmp_path, files), "pkg")
    assert find_cycle(package_graph(g, "pkg")) == ["a", "b", "c", "a"]


# ---- (c) the funding payment formula lives in money -------------------------------------------------
def test_funding_formula_only_in_money():
    copies = funding_copies(ROOT, FUNDING_CHECKED, exclude=[MONEY])
    assert not copies, "funding payment computed outside hedge_core/money (call money.funding_payment): " + \
        "; ".join(copies)


def test_funding_check_sees_the_formula_in_money():
    found = funding_copies(ROOT, [MONEY])
    assert any(f.startswith("hedge_core/money/perp.py:") and "-qty * mark * rate" in f for f in found), found


@pytest.mark.parametrize("expr", [
    "-q * mark * rate",
    "-(qty * mark * rate)",
    "-(pos.qty * ev.mark) * ev.rate",
    "rate * mark_price * -size",
    "-row['position_qty'] * row['mark_price'] * row['funding_rate']",
    "-notional * funding_rate",
    "qty * (px * rate)",
])
def test_funding_check_catches_a_copy(tmp_path, expr):
    root = _tree(tmp_path, {"pkg/x.py": f"def pay(q, mark, rate, pos, ev, size, mark_price, row, notional, "
                                        f"funding_rate, qty, px):\n    return {expr}\n"})
    assert [c.split(": ", 1)[0] for c in funding_copies(root, ["pkg"])] == ["pkg/x.py:2"]


def test_funding_check_ignores_docs_comments_and_other_rates(tmp_path):
    root = _tree(tmp_path, {"pkg/x.py": '''\
        """Funding is ``-qty * mark * rate``."""
        # pay = -qty * mark * rate
        s = "-qty * mark * rate"
        fee = qty * price * taker_fee_rate
        interest = notional * interest_rate
        apr = rate * 365 * 24
        value = qty * mark
        '''})
    assert funding_copies(root, ["pkg"]) == []


# ---- (d) test modules import only tests/support -------------------------------------------------------
def test_no_test_module_imports_another():
    found = imports_of_test_modules(ROOT)
    assert not found, "a test module imported (move the shared helper to tests/support/): " + "; ".join(found)


@pytest.mark.parametrize("line", [
    "from tests.test_other import helper",
    "import tests.test_other",
    "from tests import test_other",
    "from .test_other import helper",
    "from . import test_other",
    "from tests.conftest import SKIP_REASON",
    "def f():\n    from tests.test_other import helper",
])
def test_test_import_check_catches_an_import_of_a_test_module(tmp_path, line):
    root = _tree(tmp_path, {"tests/__init__.py": "", "tests/conftest.py": "", "tests/test_other.py": "",
                            "tests/support/__init__.py": "", "tests/support/util.py": "",
                            "tests/test_x.py": f"from tests.support.util import thing\n{line}\n"})
    found = imports_of_test_modules(root)
    assert len(found) == 1 and found[0].startswith("tests/test_x.py:"), found


def test_test_import_check_allows_support(tmp_path):
    root = _tree(tmp_path, {"tests/__init__.py": "", "tests/test_other.py": "",
                            "tests/support/__init__.py": "", "tests/support/util.py": "def test_like(): pass\n",
                            "tests/test_x.py": "from tests.support.util import test_like\nfrom tests import support\n"})
    assert imports_of_test_modules(root) == []


# ---- (e) shared helpers in tests/support; (f) a test starting runner processes is an e2e test ----------------
def test_shared_test_helpers_live_in_support():
    found = helpers_outside_support(ROOT)
    assert not found, f"shared test helpers outside tests/support/: {found}"


def test_helper_check_catches_a_helper_outside_support(tmp_path):
    root = _tree(tmp_path, {"tests/__init__.py": "", "tests/conftest.py": "", "tests/test_x.py": "",
                            "tests/browser.py": "", "tests/support/__init__.py": "", "tests/support/util.py": ""})
    assert helpers_outside_support(root) == ["tests/browser.py"]


def test_every_test_file_starting_runner_processes_is_e2e():
    starting = runner_starting_tests(ROOT)
    assert {"test_runner_crash_sim", "test_xvenue_runner", "test_xvenue_live_runner"} <= starting  # the check sees them
    missing = sorted(starting - e2e_files(ROOT))
    assert not missing, f"test files starting real runner processes missing from tests/conftest.py E2E_FILES: {missing}"


# written with placeholders (START, MOD, VERB) so that this module does not itself look like one starting a runner
@pytest.mark.parametrize("line, starts", [
    ("p = env.START(extra)", True),
    ("proc = START(env, log)", True),
    ('subprocess.Popen([sys.executable, "-m", "MOD", "--heartbeat", "0.2"])', True),
    ('hedge(tmp, "runner", "VERB", "--detach")', True),
    ("from hedge_core.runner.supervisor import Supervisor", False),
    ("def START_helper(): pass", False),
])
def test_runner_start_check_sees_each_way_to_start_one(tmp_path, line, starts):
    line = line.replace("START", "start_" + "runner").replace("MOD", "hedge_core." + "runner").replace("VERB", "start")
    root = _tree(tmp_path, {"tests/conftest.py": "E2E_FILES = {'test_a'}\n", "tests/test_b.py": line + "\n"})
    assert (runner_starting_tests(root) == {"test_b"}) is starts
    assert e2e_files(root) == {"test_a"}
