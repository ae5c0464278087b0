"""``hedge book`` errors: one line, no traceback, the right exit code (subprocesses of the real
command); the table and --json against a running runner are in test_book_runner."""

from __future__ import annotations

import pytest

from tests.support.cli_env import hedge

# every test runs the CLI as a subprocess: integration, not the in-process fast tier
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _one_line(out: str) -> str:
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


def test_no_runner(tmp_path):
    code, out = hedge(tmp_path, "book")
    assert code == 1
    assert _one_line(out).startswith("error: ") and "runner" in out


@pytest.mark.parametrize("args, field", [(["--confidence", "1.5"], "confidence"), (["--confidence", "0.2"], "confidence"),
                                         (["--horizon", "0"], "horizon")])
def test_bad_var_settings_named_before_any_call(tmp_path, args, field):
    code, out = hedge(tmp_path, "book", *args)
    assert code == 2
    line = _one_line(out)
    assert line.startswith(f"error: {field}=") and "expected" in line
