"""The seeded store of the in-process runner tests: a held DuckDB file with three days of the demo market.

Import it into a test module as the ``store`` fixture: ``from tests.support.demo_store import store  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hedge_core.data.demo import seed_demo
from hedge_core.store import Store


@pytest.fixture(name="store")
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db.duckdb", hold=True)
    seed_demo(s, days=3)
    yield s
    s.close()
