"""The Streamlit control panel. Thin: widgets -> hedge_core -> figure builders. Run: `make app`.

Every page shares the sidebar: runner health and the flatten-all kill switch (with confirmation).
"""

from __future__ import annotations

import streamlit as st

from hedge_core.views.hedges import health_view
from pages._shared import link, show_error

st.set_page_config(page_title="hedge", page_icon=":material/balance:", layout="wide")

pages = [
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("pages/start_hedge.py", title="Start a hedge", icon=":material/play_circle:"),
    st.Page("pages/hedge_detail.py", title="Hedge detail", icon=":material/monitoring:"),
    st.Page("pages/risk.py", title="Risk and LTV", icon=":material/shield:"),
    st.Page("pages/research.py", title="Research", icon=":material/science:"),
    st.Page("pages/params.py", title="Parameter sets", icon=":material/tune:"),
    st.Page("pages/market_data.py", title="Market data", icon=":material/candlestick_chart:"),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
    st.Page("pages/logs.py", title="Logs", icon=":material/receipt_long:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
]
nav = st.navigation(pages)



def flatten_all(lk) -> None:  # noqa: ANN001 - a button callback: runs before the rerun, then un-ticks the confirmation
    try:
        out = lk.client.flatten_all("operator flatten-all (panel)")
        st.session_state["flatten_all_result"] = len(out)
    except Exception as exc:  # noqa: BLE001 - shown in the sidebar after the rerun
        st.session_state["flatten_all_result"] = exc
    st.session_state["flatten_all_confirm"] = False


lk = link()
with st.sidebar:
    if lk.up:
        try:
            hv = health_view(lk.client.health())
        except Exception:  # noqa: BLE001
            hv = health_view(None)
        (st.error if not hv.ok else st.warning if hv.degraded else st.success)(hv.label, icon=":material/monitor_heart:")
    else:
        st.warning(lk.message or "runner not running", icon=":material/power_off:")
    if lk.message and lk.up:
        st.warning(lk.message)
    with st.expander("Kill switch: flatten all", icon=":material/emergency:"):
        st.caption("Closes both legs of EVERY hedge of the runner now (paper, recommend and live). "
                   "Hedges stay latched (no new entries) until resumed on their detail page.")
        sure = st.checkbox("Yes, flatten every hedge now", key="flatten_all_confirm")
        st.button("FLATTEN ALL", type="primary", disabled=not (sure and lk.up), key="flatten_all_go",
                  width="stretch", on_click=flatten_all, args=(lk,))
        done = st.session_state.pop("flatten_all_result", None)
        if isinstance(done, Exception):
            show_error(done, "Flatten-all")
        elif done is not None:
            st.success(f"flatten sent to {done} unfinished hedge(s); watch them reach COMPLETED on the Overview"
                       if done else "no unfinished hedge to flatten")

nav.run()
