"""Hedge detail: state timeline with reasons, legs and positions, orders and fills, funding ledger,
guard firings; charts of prices, basis, funding, delta, hedge ratio and PnL; pause / resume /
rebalance now / stop with confirmation. Live parts refresh on their own."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hedge_core.ui.figures.hedge import hedge_figure, overlay_figure
from hedge_core.runner.clock import clock_text
from hedge_core.store import Store
from hedge_core.ui.views.equity import backtest_overlay, hedge_chart_data
from hedge_core.ui.views.hedges import commands_for, legs_table, timeline_table
from hedge_core.ui.views.ledger import recent_rows, run_info, runs
from pages._auth import require_sign_in
from pages._shared import (
    REFRESH_S,
    cached_read,
    fmt_money,
    link,
    runner_hedges,
    show_error,
    store,
    synthetic_badge,
)

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Hedge detail")
lk = link()
summaries, _health = runner_hedges(lk)
live_ids = [s["hedge_id"] for s in summaries]
journal = cached_read(store(), runs)
journal = journal[journal["mode"] != "backtest"] if len(journal) else journal
ids = live_ids + [h for h in (journal["hedge_id"].tolist() if len(journal) else []) if h not in live_ids]
if not ids:
    st.info("No hedges yet: start one on the **Start a hedge** page.")
    st.stop()
want = st.session_state.get("detail_hedge") or st.query_params.get("hedge")
hid = st.selectbox("Hedge", ids, index=ids.index(want) if want in ids else 0, key="detail_select")
st.session_state["detail_hedge"] = hid
running = hid in live_ids
COMMANDS = {"pause": "Pause", "resume": "Resume", "rebalance_now": "Rebalance now", "stop": "Stop"}


def clock_part(s: dict) -> None:
    """The hedge's clock (runner.clock): ``live`` (the venue's time) or a replay with its clock,
    a progress bar over the replay window and the ETA."""
    rp = s.get("replay")
    if s.get("clock") != "replay" or not isinstance(rp, dict):
        st.caption(f"clock: {s.get('clock') or 'live'} · venue time {s.get('clock_now', '')}")
        return
    st.progress(min(max(float(rp.get("fraction") or 0.0), 0.0), 1.0), text=clock_text(s))
    st.caption(f"replay window {rp.get('start')} → {rp.get('end')} · speed {rp.get('speed') or 'max'} "
               "data s per wall s")


@st.fragment(run_every=REFRESH_S)
def live_state() -> None:
    s = None
    if running:
        try:
            s = lk.client.hedge(hid)
        except Exception as exc:  # noqa: BLE001
            show_error(exc, "Reading the hedge")
    if s is None:
        row = journal[journal["hedge_id"] == hid].iloc[0].to_dict()
        st.markdown(f"**mode: {str(row.get('mode', '')).upper()}** · state **{row.get('state')}** · not held by the "
                    "runner (finished, or waiting for the runner's next start)")
        return
    mode = str(s.get("mode", "")).upper()
    (st.error if mode == "LIVE" else st.info)(f"mode: {mode} · state: {s.get('state')} · status: {s.get('status')} · "
                                               f"params {s.get('params')} · {s.get('spot_symbol')} / {s.get('perp_symbol')}")
    if s.get("error"):
        st.error(f"hedge task failed: {s['error']}")
    clock_part(s)
    if s.get("held"):  # a guard holds it in an opening state: say which, the numbers and the way out
        st.warning(s["held"], icon=":material/front_hand:")
    c = st.columns(5)  # the state is in full in the line above (a metric would cut MONITORING_POSITIONS)
    c[0].metric("net PnL (USDT)", fmt_money(s.get("pnl")))
    c[1].metric("price PnL (USDT)", fmt_money(s.get("price_pnl")))
    c[2].metric("funding (USDT)", fmt_money(s.get("funding")))
    c[3].metric("fees (USDT)", fmt_money(s.get("fees")))
    hr = s.get("hedge_ratio")
    c[4].metric("hedge ratio", f"{hr:.4f}" if isinstance(hr, (int, float)) else "n/a",
                help=f"target {s.get('target_ratio')}, drift {s.get('drift')}")
    st.dataframe(legs_table(s), hide_index=True, width="stretch", key="legs")
    for a in (s.get("alerts") or [])[-8:]:  # newest last; the Logs page has all of them
        show = {"info": st.info, "warning": st.warning}.get(str(a.get("level")), st.error)
        show(f"{a.get('level')}: {a.get('message')}" + (f" ({a['ts']})" if a.get("ts") else ""))
    commands_part(s.get("state"))


def send_command(hedge_id: str, cmd: str) -> None:
    """Confirm button callback: runs BEFORE the next script run, so that run reads the new state and
    offers the buttons that fit it; the outcome is shown once on that run."""
    st.session_state["detail_pending"] = None
    try:
        out = lk.client.command(hedge_id, cmd, "operator (panel)")
    except Exception as exc:  # noqa: BLE001 - shown on the next run
        st.session_state["detail_flash"] = exc
    else:
        st.session_state["detail_flash"] = f"{COMMANDS[cmd]} sent: state {out.get('state')}"


def commands_part(now_state: str | None) -> None:
    """The operator's commands, drawn INSIDE the self-refreshing fragment: a click reruns the fragment with
    the hedge's fresh state (a click outside it could be swallowed by the fragment's own timed rerun)."""
    offered = [c for c in COMMANDS if c in commands_for(now_state)] if running else []
    if running and not offered:
        st.caption(f"no commands in state {now_state}: the hedge is finished")
    flash = st.session_state.pop("detail_flash", None)
    if isinstance(flash, Exception):
        show_error(flash, "Command")
    elif flash:
        st.success(flash)
    if offered:
        st.subheader("Commands")
        pending = st.session_state.get("detail_pending")
        cols = st.columns(len(offered))
        for col, cmd in zip(cols, offered, strict=True):
            if col.button(COMMANDS[cmd], key=f"cmd_{cmd}", width="stretch"):
                st.session_state["detail_pending"] = pending = (hid, cmd)
        if pending and pending[0] == hid:
            cmd = pending[1]
            st.warning(f"Confirm **{COMMANDS[cmd]}** of {hid}?" + (" Both legs will be closed." if cmd == "stop" else ""))
            y, n = st.columns(2)
            y.button(f"Confirm {COMMANDS[cmd].lower()}", type="primary", key="cmd_confirm", width="stretch",
                     on_click=send_command, args=(hid, cmd))
            if n.button("Cancel", key="cmd_cancel", width="stretch"):
                st.session_state["detail_pending"] = None
                st.rerun()


live_state()


@st.fragment(run_every=3 * REFRESH_S if running else None)
def ledger_part() -> None:
    """Chart, timeline and ledger: re-read on their own while the hedge runs (the runner's snapshot is a
    few seconds old; an unchanged snapshot is not read again)."""
    rd = store()
    st.subheader("Charts")
    run_row = journal[journal["hedge_id"] == hid]
    now_summaries = runner_hedges(lk)[0] if running else summaries  # the hedge's clock moves on
    summary = next((s for s in now_summaries if s["hedge_id"] == hid), {})
    spot_symbol = summary.get("spot_symbol") or (run_row["spot_symbol"].iloc[0] if len(run_row) else "BTC/USDT")
    venue = summary.get("venue") or (run_row["spot_venue"].iloc[0] if len(run_row) else "binance")
    trans = cached_read(rd, Store.read_table, "transitions", hedge_id=hid)
    timeframe = run_info(run_row).get("timeframe") or "1h"  # the hedge's bar size (HedgeSpec.timeframe)
    chart = cached_read(rd, hedge_chart_data, hid, venue=venue, spot_symbol=spot_symbol, timeframe=timeframe,
                        transitions=trans, last_ts=summary.get("last_ts"))
    if isinstance(chart, str):
        st.info(chart)
    else:
        synthetic_badge(chart.view.synthetic)
        st.plotly_chart(hedge_figure(chart.view, chart.series, title=hid), width="stretch", key="hedge_chart")
        ref = summary.get("params") or ""
        if "@" in ref and st.toggle(f"Compare with a backtest of {ref} over the same period", key="detail_overlay"):
            info = run_info(run_row)
            bt = cached_read(rd, backtest_overlay, ref, venue=chart.view.venue, spot_symbol=spot_symbol,
                             timeframe=timeframe, transitions=trans, last_ts=summary.get("last_ts"),
                             notional=info.get("notional"))
            if isinstance(bt, str):
                st.info(bt)
            else:
                st.plotly_chart(overlay_figure(chart.series["pnl"], bt, title=f"{hid} vs a backtest of {ref}"),
                                width="stretch", key="overlay_chart")

    st.subheader("State timeline")
    st.dataframe(timeline_table(trans), hide_index=True, width="stretch", key="timeline")
    TABLES = {"Fills": "fills", "Orders": "orders", "Funding ledger": "funding_payments",
              "Guard firings": "guard_firings", "Position snapshots": "position_snapshots"}
    which = st.segmented_control("Ledger", list(TABLES), default="Fills", key="detail_table") or "Fills"
    table = TABLES[which]
    st.dataframe(cached_read(rd, recent_rows, table, hid), hide_index=True, width="stretch", key=f"ledger_{table}")
    st.caption("tables show the newest 200 rows; ledger data come from the runner's snapshot (a few seconds old)")

    st.subheader("Downloads")
    st.caption("every row of the hedge's ledger, as CSV (timestamps UTC; money in quote units)")
    dl = st.columns(4)
    for col, (label, tname) in zip(dl, (("fills", "fills"), ("funding", "funding_payments"),
                                         ("transitions", "transitions"), ("orders", "orders")), strict=True):
        try:
            frame = cached_read(rd, Store.read_table, tname, hedge_id=hid)
        except Exception as exc:  # noqa: BLE001 - one table missing must not hide the others
            col.caption(f"{label}: not readable ({type(exc).__name__})")
            continue
        col.download_button(f"{label} ({len(frame):,} rows)", frame.to_csv(index=False).encode(),
                            file_name=f"{hid}-{label}.csv", mime="text/csv", key=f"dl_{tname}", width="stretch")


ledger_part()
