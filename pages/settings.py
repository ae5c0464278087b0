"""Settings: database, exchange keys present (never their values), runner address."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hedge_core.views.settings import key_status
from pages._shared import db_path, store

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
