"""Every panel page renders without exceptions on an empty database and on the demo market (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.data.demo import seed_demo
from hedge_core.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("[!_]*.py"))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(path) as s:
        seed_demo(s, days=20, seed=3)
    return path


def _run(page: str, db: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("HEDGE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page(page).run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_database(page: str, tmp_path, monkeypatch) -> None:
    db = tmp_path / "empty.duckdb"
    Store(db).close()
    at = _run(page, db, monkeypatch)
    assert not at.exception, at.exception


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_demo_market(page: str, demo_db: Path, monkeypatch) -> None:
    at = _run(page, demo_db, monkeypatch)
    assert not at.exception, at.exception


def test_data_page_import_rejects_missing_path(demo_db: Path, monkeypatch, tmp_path) -> None:
    at = _run("pages/data.py", demo_db, monkeypatch)
    at.text_input[0].input(str(tmp_path / "nope"))
    at.button(key="FormSubmitter:import-Import").click()
    at.run()
    assert any("does not exist" in e.value for e in at.error)


def test_settings_page_never_shows_secrets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HEDGE_BINANCE_API_KEY", "KEYVALUE-abcdef-123456")
    monkeypatch.setenv("HEDGE_BINANCE_API_SECRET", "SECRETVALUE-abcdef-654321")
    db = tmp_path / "s.duckdb"
    Store(db).close()
    at = _run("pages/settings.py", db, monkeypatch)
    assert not at.exception
    shown = repr([d.value for d in at.dataframe]) + repr([m.value for m in at.markdown])
    assert "present" in shown
    assert "KEYVALUE" not in shown and "SECRETVALUE" not in shown
