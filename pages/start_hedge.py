"""Start a hedge: a parameter set version (with provenance and backtest KPIs), mode and size.

Bad input is rejected inline naming the field; live mode needs the version promoted to live
(the promotion gate) and a typed confirmation."""

from __future__ import annotations

import json

import streamlit as st

from hedge_core.params import store as param_store
from hedge_core.errors import InvalidInput
from hedge_core.ui.views.hedges import (
    MODES,
    live_confirmation_phrase,
    replay_options,
    validate_start,
)
from hedge_core.ui.views.params import choices, provenance_table
from pages._auth import require_sign_in
from pages._shared import link, require_runner, show_error

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Start a hedge")
pre = st.session_state.get("start_prefill") or {}  # set by the Funding scanner's "start from this row"
if pre:
    st.info(pre["note"], icon=":material/radar:")
sets = choices(param_store.list_sets())
if sets.empty:
    st.info("No parameter sets yet. Export one on the **Research** or **Parameter sets** page "
            "(or `hedge params export NAME`).")
    st.stop()

ref = st.selectbox("Parameter set version", sets["ref"].tolist(), key="start_ref",
                   format_func=lambda r: sets.set_index("ref").loc[r, "label"])
row = sets.set_index("ref").loc[ref]
ps = param_store.load(ref)
c1, c2 = st.columns(2)
with c1:
    st.caption("provenance")
    st.dataframe(provenance_table(ps), hide_index=True, width="stretch")
with c2:
    st.caption("backtest KPIs recorded with this version")
    kp = dict(ps.provenance.get("kpis") or {})
    st.dataframe({"kpi": list(kp), "value": [float(v) for v in kp.values()]}, hide_index=True, width="stretch")
with st.expander("parameters"):
    st.code(json.dumps(ps.params.model_dump(mode="json"), indent=2), language="json")

default_size = max(float(getattr(ps.params, "notional", 1000.0)), float(pre.get("min_size", 0.0)))
with st.form("start"):
    mode = st.radio("Mode", MODES, horizontal=True, key="start_mode",
                    help="paper: the built-in simulator's fills on live (or replayed) prices; recommend: decisions only, nothing sent; "
                         "live: real orders with real money")
    size = st.number_input("Size (spot notional, USDT)", value=default_size, step=100.0, key="start_size",
                           help="overrides the set's notional for this hedge")
    symbol = st.text_input("Spot symbol", value=pre.get("spot_symbol", "BTC/USDT"), key="start_symbol",
                           help="ccxt unified; the perp is its USDT perpetual")
    typed = st.text_input(f"Live only: type  {live_confirmation_phrase(ref)}  to confirm", key="start_confirm")
    paper_data = st.radio("Paper market data", ["live: the venue's prices (replay when it does not answer)",
                                                 "replay of stored history"], key="start_paper_data",
                          help="paper mode only: live market data with paper fills, or a replay of the store's bars")
    with st.expander("Paper replay (paper mode, replay only)"):
        speed = st.number_input("Replay speed (data seconds per wall second)", value=3600.0, min_value=1.0,
                                max_value=1e6, key="start_speed", help="3600 = one hour of stored data per second")
        replay_start = st.text_input("Replay start (UTC, empty = first stored bar)", value="", key="start_replay_start")
    go = st.form_submit_button("Start hedge", type="primary")
    check = st.form_submit_button("Check only (send nothing)",
                                  help="the preflight of a start: both legs' lot and minimum notional at the "
                                       "current price, balances and margin, position limits, position mode")

st.caption(f"status of {ref}: **{row['status']}**" + ("" if row["status"] == "live" else
           " (live mode needs promotion to live on the Parameter sets page)"))
if go or check:
    try:
        req = validate_start(ref, str(row["status"]), mode, size, symbol, typed_confirmation=typed)
        replay = req.mode == "paper" and paper_data.startswith("replay")
        extra = {**replay_options(speed, replay_start), "feed": "replay"} if replay else {}
    except InvalidInput as exc:
        st.error(f"Not started — {exc.field}: {exc}", icon=":material/error:")
        st.stop()
    lk = require_runner(link())
    if lk is None:
        st.stop()
    body = {**req.body(), **extra, **({"dry_run": True} if check else {})}
    try:
        with st.spinner(f"{'checking' if check else 'starting'} {ref} in {req.mode} mode ..."):
            out = lk.client.start(body.pop("params"), mode=body.pop("mode"), **body)
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "Not started")
    else:
        if out.get("dry_run"):  # the same checks as a start (runner.preflight); nothing started or sent
            st.success("Check passed: nothing started, nothing sent.\n\n" +
                       "\n".join(f"- {ln}" for ln in out["preflight"]["lines"]))
            st.stop()
        clock = f" · clock: {out['clock']}" if out.get("clock") else ""
        st.success(f"started **{out['hedge_id']}** ({out['mode']}): {out.get('state')}{clock}")
        st.session_state["detail_hedge"] = out["hedge_id"]
        st.page_link("pages/hedge_detail.py", label="Open its detail page", icon=":material/monitoring:")
