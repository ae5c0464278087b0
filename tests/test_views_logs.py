"""The Logs page's reader: newest first, filters, a cut first line, non-JSON lines, and the page itself."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.errors import InvalidInput
from hedge_core.ui.views.logs import log_path, tail_log


def _write(path: Path, recs: list[object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs))


RECS = [
    {"ts": "2024-01-01T00:00:00.000Z", "level": "info", "logger": "x", "msg": "hedge started", "hedge_id": "h1"},
    {"ts": "2024-01-01T00:00:01.000Z", "level": "debug", "logger": "x", "msg": "tick", "hedge_id": "h1"},
    {"ts": "2024-01-01T00:00:02.000Z", "level": "warning", "logger": "x", "msg": "guard fired", "hedge_id": "h2",
     "numbers": {"silent_s": 12.5}},
    "Traceback (most recent call last): boom",
    {"ts": "2024-01-01T00:00:03.000Z", "level": "error", "logger": "x", "msg": "order rejected", "hedge_id": "h1"},
]


def test_newest_first_filtered_by_level_hedge_and_text(tmp_path):
    p = log_path(tmp_path)
    _write(p, RECS)
    df = tail_log(p)
    assert df["msg"].tolist() == ["order rejected", "Traceback (most recent call last): boom", "guard fired",
                                  "hedge started"]  # debug left out at the default level
    assert df.loc[df["msg"] == "guard fired", "details"].item() == '{"numbers":{"silent_s":12.5}}'
    assert tail_log(p, min_level="debug")["msg"].tolist()[-2:] == ["tick", "hedge started"]
    assert tail_log(p, hedge_id="h1")["msg"].tolist() == ["order rejected", "hedge started"]
    assert tail_log(p, text="GUARD")["msg"].tolist() == ["guard fired"]
    assert tail_log(p, min_level="error", max_rows=1)["msg"].tolist() == ["order rejected"]
    assert tail_log(tmp_path / "none.jsonl").empty
    with pytest.raises(InvalidInput, match="min_level"):
        tail_log(p, min_level="loud")


def test_only_the_tail_is_read_and_a_cut_line_is_dropped(tmp_path):
    p = log_path(tmp_path)
    _write(p, [{"ts": "2024-01-01T00:00:00Z", "level": "info", "msg": f"line {i:04d}"} for i in range(1000)])
    df = tail_log(p, max_bytes=2_000, max_rows=1000)
    assert 0 < len(df) < 40 and df["msg"].iloc[0] == "line 0999"
    assert all(m.startswith("line ") for m in df["msg"])  # no half line parsed as an error record


def test_logs_page_renders_records(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _write(log_path(home), RECS)
    monkeypatch.setenv("HEDGE_DB", str(tmp_path / "x.duckdb"))
    monkeypatch.setenv("HEDGE_PANEL_AUTOSTART", "0")
    monkeypatch.setenv("HEDGE_RUNNER_HOME", str(home))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60).run()
    at.switch_page("pages/logs.py").run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 4
    at.text_input(key="logs_hedge").set_value("h2").run()
    assert at.dataframe[0].value["msg"].tolist() == ["guard fired"]
