"""The sidebar every page shares: runner health and the flatten-all kill switch (with confirmation).

Drawn by ``app.py`` for every page, and by ``pages/_auth.py`` when a page runs without app.py (a bookmark
opened first after a restart, see there). UI plumbing only.
"""

from __future__ import annotations

import streamlit as st

from hedge_core.ui.views.hedges import health_view
from hedge_core.ui.views.runner_link import RunnerLink
from pages._shared import link, show_error


def flatten_all(lk: RunnerLink) -> None:
    """Button callback: runs before the rerun, then un-ticks the confirmation."""
    try:
        out = lk.client.flatten_all("operator flatten-all (panel)")
        st.session_state["flatten_all_result"] = len(out)
    except Exception as exc:  # noqa: BLE001 - shown in the sidebar after the rerun
        st.session_state["flatten_all_result"] = exc
    st.session_state["flatten_all_confirm"] = False


def panel_sidebar() -> None:
    """Runner health and the kill switch, in the sidebar."""
    lk = link()
    with st.sidebar:
        if lk.up:
            try:
                hv = health_view(lk.client.health())
            except Exception:  # noqa: BLE001
                hv = health_view(None)
            (st.error if not hv.ok else st.warning if hv.degraded else st.success)(hv.label,
                                                                                icon=":material/monitor_heart:")
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
