"""Settings: database, exchange keys present (never their values), runner address."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hedge_core.ui.views.settings import key_status
from pages._auth import require_sign_in
from pages._shared import db_path, store

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Settings")

st.subheader("Database")
st.write(f"`{db_path()}` (set `HEDGE_DB` or pass `--db` to `hedge app` to change it)")
st.write(f"schema version {store().schema_version()}")

st.subheader("Exchange keys")
st.caption("Keys come only from the environment (HEDGE_<VENUE>_API_KEY / _API_SECRET) or from a keys file "
           "outside the repository named by HEDGE_KEYS_FILE. Their values are never shown.")
rows = [{"venue": s.venue, "keys": "present" if s.present else "absent", "source": s.source,
         "problem": s.problem} for s in key_status()]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Runner")
from hedge_core.ui.views.runner_link import autostart_enabled, runner_info, snapshot_age_s  # noqa: E402
from pages._shared import link  # noqa: E402

lk = link()
info = runner_info(lk)
age = snapshot_age_s(lk)
st.dataframe(pd.DataFrame([
    {"setting": "address (loopback only)", "value": info["address"] or "not running"},
    {"setting": "pid", "value": str(info["pid"] or "")},
    {"setting": "home (runner.json, token file, logs)", "value": info["home"]},
    {"setting": "panel starts the runner when absent", "value": "yes" if autostart_enabled() else "no (HEDGE_PANEL_AUTOSTART=0)"},
    {"setting": "reads from", "value": "the runner's snapshot" + (f" ({age:.1f} s old)" if age is not None else "")
     if lk.up else "the database file"},
]), hide_index=True, width="stretch", key="runner_settings")
st.caption("The API token lives in the runner's home (0600) and is never shown. The runner keeps running "
           "when the panel or the browser closes: stop it with `hedge runner stop`.")
if lk.message:
    st.warning(lk.message)
