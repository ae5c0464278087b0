"""Panel sign-in logic (hedge_core/ui/views/auth.py): the salted digest check, the bind-address policy,
the failed-attempt delay; `hedge app` refusing a non-loopback address without a password; every page
calling the gate first."""

from __future__ import annotations

import ast
import os
import subprocess
import time
import sys
from pathlib import Path

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.ui.views import auth

ROOT = Path(__file__).resolve().parents[1]
FAST = 1_000  # PBKDF2 iterations in tests (the real count only costs time)


def test_right_password_verifies_and_wrong_ones_do_not() -> None:
    check = auth.PasswordCheck.from_password("correct horse", iterations=FAST)
    assert check.verify("correct horse")
    for wrong in ("correct hors", "correct horse ", "Correct horse", "", "correct horse\x00"):
        assert not check.verify(wrong), wrong


def test_digest_is_salted_per_start_and_the_password_is_not_kept() -> None:
    a = auth.PasswordCheck.from_password("correct horse", iterations=FAST)
    b = auth.PasswordCheck.from_password("correct horse", iterations=FAST)
    assert a.salt != b.salt and a.digest != b.digest  # a fresh salt every start
    assert a.fingerprint != b.fingerprint  # a session signed in before a restart is not signed in after it
    for obj in (a, b):
        assert "correct horse" not in repr(obj) and "correct horse".encode() not in obj.salt + obj.digest
        assert repr(obj) == "PasswordCheck(<redacted>)"
        assert obj.digest not in (b"correct horse",) and len(obj.digest) == 32


def test_password_from_the_environment_only_and_a_short_one_is_refused_without_echo() -> None:
    assert auth.password_check({}) is None
    assert auth.password_check({auth.PASSWORD_ENV: ""}) is None
    check = auth.password_check({auth.PASSWORD_ENV: "long enough"})
    assert check is not None and check.iterations == auth.PBKDF2_ITERATIONS and check.verify("long enough")
    with pytest.raises(InvalidInput) as exc:
        auth.password_check({auth.PASSWORD_ENV: "short7!"})
    assert exc.value.field == auth.PASSWORD_ENV and "short7!" not in str(exc.value)
    assert "at least 8 characters" in str(exc.value)


@pytest.mark.parametrize("address", ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"])
def test_loopback_addresses(address: str) -> None:
    assert auth.is_loopback(address)
    assert auth.bind_refusal(address, password_set=False) is None


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com",
                                     "localhost.evil.com"])
def test_non_loopback_addresses_need_a_password(address: str | None) -> None:
    assert not auth.is_loopback(address)
    msg = auth.bind_refusal(address, password_set=False)
    assert msg is not None and auth.PASSWORD_ENV in msg and "--address localhost" in msg
    assert auth.bind_refusal(address, password_set=True) is None


def test_delay_doubles_from_the_base_up_to_the_cap() -> None:
    assert [auth.delay_after(n) for n in range(0, 9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert auth.delay_after(10_000) == auth.MAX_DELAY_S  # no overflow


def test_attempts_are_throttled_per_session_and_per_panel() -> None:
    check = auth.PasswordCheck.from_password("correct horse", iterations=FAST)
    session, panel = auth.Throttle(), auth.Throttle()
    out = auth.attempt(check, "guess-1", (session, panel), now=100.0)
    assert not out.ok and out.message == "wrong password; next attempt in 1 s"
    session, panel = out.throttles
    assert (session.failures, panel.failures) == (1, 1) and session.not_before == 101.0

    # too early: not even checked (the right password is refused too) and the wait does not grow
    early = auth.attempt(check, "correct horse", (session, panel), now=100.5)
    assert not early.ok and early.throttles == (session, panel) and "try again in 1 s" in early.message

    out = auth.attempt(check, "guess-2", (session, panel), now=101.0)
    session, panel = out.throttles
    assert panel.failures == 2 and panel.not_before == 103.0 and "next attempt in 2 s" in out.message

    # a new browser session starts with a clean throttle, but the panel's one still holds it back
    fresh = auth.attempt(check, "correct horse", (auth.Throttle(), panel), now=102.0)
    assert not fresh.ok and "try again in 1 s" in fresh.message

    ok = auth.attempt(check, "correct horse", (session, panel), now=103.0)
    assert ok.ok and ok.throttles == (auth.Throttle(), auth.Throttle())
    assert "correct horse" not in ok.message + out.message + early.message


def _hedge_app(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != auth.PASSWORD_ENV}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "hedge_core.cli", "app", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def test_hedge_app_refuses_a_public_address_without_a_password(tmp_path) -> None:
    db = tmp_path / "never.duckdb"
    res = _hedge_app("--address", "0.0.0.0", "--db", str(db), env={"HEDGE_OFFLINE": "1"})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "refusing to serve the panel on 0.0.0.0 without a password" in res.stderr
    assert auth.PASSWORD_ENV in res.stderr and "--address localhost" in res.stderr
    assert "Traceback" not in res.stderr and not db.exists()  # refused before anything was done


def test_hedge_app_refuses_a_too_short_password_without_echoing_it(tmp_path) -> None:
    db = tmp_path / "never.duckdb"
    res = _hedge_app("--db", str(db), env={"HEDGE_OFFLINE": "1", auth.PASSWORD_ENV: "pw-123"})
    assert res.returncode == 2 and "at least 8 characters" in res.stderr
    assert "pw-123" not in res.stdout + res.stderr and "Traceback" not in res.stderr and not db.exists()


def test_every_page_calls_the_gate_before_anything_else() -> None:
    """The first statement after the imports of every page is ``require_sign_in()``; app.py mounts the
    navigation and then calls it before the sidebar."""
    pages = sorted((ROOT / "pages").glob("[!_]*.py"))
    assert len(pages) >= 9
    for page in [*pages, ROOT / "app.py"]:
        body = [n for n in ast.parse(page.read_text()).body
                if not isinstance(n, (ast.Import, ast.ImportFrom))
                and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        calls = [ast.unparse(n) for n in body[:3]]
        gate = next(i for i, c in enumerate(calls) if c.startswith("require_sign_in("))
        before = calls[:gate]
        assert all(c.startswith(("page_config(", "nav = navigation(")) for c in before), (page.name, calls)
    nav_paths = {p for p, _t, _i in __import__("pages._nav", fromlist=["PAGES"]).PAGES}
    assert nav_paths == {f"pages/{p.name}" for p in pages}  # one navigation holds every page


# ---- the Streamlit gate (pages/_auth.py) through AppTest: app.py and a page, no browser ----------------

def _app(monkeypatch, tmp_path, password: str | None):
    from streamlit.testing.v1 import AppTest

    import pages._auth as gate
    from tests.support.browser import panel_env

    for k, v in panel_env(tmp_path, demo_days=None, export=False).items():
        monkeypatch.setenv(k, v)
    if password is None:
        monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    else:
        monkeypatch.setenv(auth.PASSWORD_ENV, password)
    monkeypatch.setattr(gate, "_process_throttle", auth.Throttle())
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def _titles(at) -> list[str]:
    return [t.value for t in at.title]


def test_app_shows_only_the_form_until_the_right_password(monkeypatch, tmp_path) -> None:
    at = _app(monkeypatch, tmp_path, "correct horse battery").run()
    assert not at.exception and _titles(at) == ["Sign in"]
    assert not [b for b in at.sidebar.button if b.key == "flatten_all_go"]  # no kill switch before sign-in
    at.text_input(key="panel_sign_in_password").input("wrong guess")
    at.button(key="FormSubmitter:panel_sign_in-Sign in").click().run()
    assert _titles(at) == ["Sign in"] and "wrong password; next attempt in 1 s" in at.error[0].value
    time.sleep(1.1)
    at.text_input(key="panel_sign_in_password").input("correct horse battery")
    at.button(key="FormSubmitter:panel_sign_in-Sign in").click().run()
    assert not at.exception, at.exception
    assert _titles(at) == ["Overview"]
    assert at.sidebar.button(key="panel_sign_out") is not None
    at.switch_page("pages/hedge_detail.py").run()  # a rerun: Streamlit's legacy pages/ mode under AppTest
    assert _titles(at) == ["Hedge detail"] and not at.exception
    assert at.sidebar.button(key="flatten_all_go") is not None  # the shared sidebar on the rerun too
    at.sidebar.button(key="panel_sign_out").click().run()
    assert _titles(at) == ["Sign in"]


def test_a_page_alone_is_gated_too(monkeypatch, tmp_path) -> None:
    from streamlit.testing.v1 import AppTest

    _app(monkeypatch, tmp_path, "correct horse battery")
    at = AppTest.from_file(str(ROOT / "pages" / "start_hedge.py"), default_timeout=60).run()
    assert not at.exception and _titles(at) == ["Sign in"]


def test_without_a_password_loopback_is_open_and_says_so(monkeypatch, tmp_path) -> None:
    at = _app(monkeypatch, tmp_path, None).run()
    assert not at.exception and _titles(at) == ["Overview"]
    assert any("Unprotected" in c.value for c in at.sidebar.caption)


def test_without_a_password_a_public_bind_shows_only_the_refusal(monkeypatch, tmp_path) -> None:
    from streamlit import config

    at = _app(monkeypatch, tmp_path, None)
    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at.run()
    finally:
        config.set_option("server.address", old)
    assert not at.exception and _titles(at) == []
    assert "refusing to serve the panel on 0.0.0.0 without a password" in at.error[0].value


def test_a_too_short_password_locks_the_panel(monkeypatch, tmp_path) -> None:
    at = _app(monkeypatch, tmp_path, "short").run()
    assert not at.exception and _titles(at) == []
    assert "locked" in at.error[0].value and "short" not in at.error[0].value.replace("shorter", "")
