"""The panel's sign-in gate (Streamlit side): one call at the top of ``app.py`` and of every page.

The logic (password digest, bind-address policy, failed-attempt delay) is pure and tested in
``hedge_core/ui/views/auth.py``; this module draws the form and keeps the state:

- signed in: per browser session (``st.session_state``), holding only a fingerprint of the salted digest;
  a new browser tab or a reload is a new session and signs in again (no cookie, no token on disk);
- failed attempts: an exponential delay per browser session AND one for the whole panel process, so
  opening new sessions does not reset it (the cost: a guesser can keep the form waiting up to
  ``MAX_DELAY_S`` for everyone; the CLI, e.g. ``hedge flatten-all``, is not affected).

Bookmarks. Streamlit has a legacy mode for a folder named ``pages/`` next to the main script: until the
first ``st.navigation`` call of the server process, a URL such as ``/hedge_detail`` runs that page file on
its own, under a raw file menu ("app", "data", ..., "shared") and WITHOUT ``app.py`` (no kill switch,
no health, no gate). The first page opened after a restart is such a run (and so is every rerun under
Streamlit's AppTest). :func:`require_sign_in` notices it and does app.py's part there: it mounts the
panel's one navigation (replacing the raw menu; the URL's page stays selected), applies the gate and
draws the shared sidebar; then the page draws itself as usual. Nothing is lost: no redirect, the
widget values of the run stay.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time

import streamlit as st

from hedge_core.errors import InvalidInput
from hedge_core.ui.views import auth

_SESSION_KEY = "_panel_signed_in"  # holds PasswordCheck.fingerprint of the digest signed in against
_THROTTLE_KEY = "_panel_sign_in_throttle"
_LOCK = threading.Lock()
_PROCESS_KEY = secrets.token_bytes(16)  # keys the one-slot cache below; never leaves this process
_cache: dict[str, object] = {"tag": None, "check": None}
_process_throttle = auth.Throttle()


def _password_check() -> auth.PasswordCheck | None:
    """The check for the current ``HEDGE_PANEL_PASSWORD`` (hashed once per value and process).

    The cache key is an HMAC of the value under a random per-process key, so no unsalted hash of the
    password is kept. Raises InvalidInput for a too-short password.
    """
    value = os.environ.get(auth.PASSWORD_ENV, "")
    tag = hmac.new(_PROCESS_KEY, value.encode("utf-8"), hashlib.sha256).digest()
    with _LOCK:
        if _cache["tag"] != tag:
            _cache["check"] = auth.password_check({auth.PASSWORD_ENV: value})
            _cache["tag"] = tag
        return _cache["check"]  # type: ignore[return-value]


def _legacy_pages_mode() -> bool:
    """True while Streamlit runs page files of ``pages/`` on their own (see the module docstring).

    ``PagesManager.uses_pages_directory`` is the flag Streamlit itself keys that mode on; st.navigation
    clears it. tests/test_browser_sign_in.py opens a bookmark on a fresh server, so a Streamlit upgrade
    that renames it fails a test instead of passing silently.
    """
    from streamlit.runtime.pages_manager import PagesManager

    return bool(getattr(PagesManager, "uses_pages_directory", False))


def _signed_in(check: auth.PasswordCheck) -> bool:
    return st.session_state.get(_SESSION_KEY) == check.fingerprint


def _sign_in_form(check: auth.PasswordCheck) -> None:
    """Only the sign-in form; stops the script run until the password is right."""
    global _process_throttle
    st.title("Sign in")
    st.caption("This panel can start, stop and flatten hedges: it asks for the password set in "
               f"`{auth.PASSWORD_ENV}` where it was started.")
    with st.form("panel_sign_in", clear_on_submit=True):
        password = st.text_input("Password", type="password", key="panel_sign_in_password")
        go = st.form_submit_button("Sign in", type="primary")
    if go:
        mine = st.session_state.get(_THROTTLE_KEY, auth.Throttle())
        with _LOCK:
            out = auth.attempt(check, password or "", (mine, _process_throttle), time.monotonic())
            mine, _process_throttle = out.throttles
        st.session_state[_THROTTLE_KEY] = mine
        if out.ok:
            st.session_state[_SESSION_KEY] = check.fingerprint
            st.rerun()
        st.error(out.message, icon=":material/lock:")
    st.stop()


def require_sign_in(*, status: bool = False) -> None:
    """Let the script run go on only for a signed-in session (or an allowed unprotected loopback panel).

    Call it first on every page (``app.py`` passes ``status=True`` to also draw the sign-out button or
    the "unprotected" note in the sidebar). Refuses with the reason and what to set when the panel is
    reachable beyond loopback without a password, or the password is too short.
    """
    legacy = _legacy_pages_mode()
    if legacy:  # app.py did not run: mount the panel's navigation here (replacing the raw file menu)
        from pages._nav import navigation, page_config

        page_config()
        navigation(visible=signed_in_or_open())
        status = True
    try:
        check = _password_check()
    except InvalidInput as exc:
        st.error(f"The panel is locked: {exc}. Set a longer {auth.PASSWORD_ENV} and restart it.",
                 icon=":material/lock:")
        st.stop()
    if check is None:
        refusal = auth.bind_refusal(st.get_option("server.address"), password_set=False)
        if refusal:
            st.error(refusal, icon=":material/lock:")
            st.stop()
        if status:
            st.sidebar.caption(f":material/lock_open: Unprotected: no `{auth.PASSWORD_ENV}`; "
                               "reachable from this machine only (loopback).")
    elif not _signed_in(check):
        _sign_in_form(check)
    elif status and st.sidebar.button("Sign out", icon=":material/logout:", key="panel_sign_out"):
        st.session_state.pop(_SESSION_KEY, None)
        st.rerun()
    if legacy:  # ... and app.py's sidebar, so the page has health and the kill switch like any other
        from pages._sidebar import panel_sidebar

        panel_sidebar()


def signed_in_or_open() -> bool:
    """True when the pages may be listed: a signed-in session, or an allowed panel without a password."""
    try:
        check = _password_check()
    except InvalidInput:
        return False
    if check is None:
        return auth.bind_refusal(st.get_option("server.address"), password_set=False) is None
    return _signed_in(check)
