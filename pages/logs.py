"""Logs: the runner's newest log records (secrets are scrubbed before they are written), filtered by
level, hedge and text. Refreshes on its own."""

from __future__ import annotations

import streamlit as st

from hedge_core.ui.views.logs import LEVELS, log_path, tail_log
from pages._auth import require_sign_in
from pages._shared import REFRESH_S, link, show_error

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Logs")
lk = link()
path = log_path(lk.home)
st.caption(f"runner log: `{path}` (newest first; API keys, secrets and tokens are replaced by *** before writing)")
c1, c2, c3, c4 = st.columns([1, 1.2, 2, 1])
level = c1.selectbox("at least", LEVELS, index=LEVELS.index("info"), key="logs_level")
hedge = c2.text_input("hedge id", value="", key="logs_hedge").strip() or None
text = c3.text_input("contains", value="", key="logs_text").strip() or None
rows = c4.number_input("rows", min_value=10, max_value=5000, value=300, step=50, key="logs_rows")


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    try:
        df = tail_log(path, max_rows=int(rows), min_level=level, hedge_id=hedge, text=text)
    except Exception as exc:  # noqa: BLE001 - shown, never a traceback
        show_error(exc, "Reading the log")
        return
    if df.empty:
        st.info("No log records match (the runner writes its log once it has started).")
        return
    st.dataframe(df, hide_index=True, width="stretch", key="logs_table",
                 column_config={"ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
                                "msg": st.column_config.TextColumn("message", width="large")})
    st.download_button("Download these rows (CSV)", df.to_csv(index=False).encode(), file_name="runner-log.csv",
                       mime="text/csv", key="logs_csv")


live()
