"""Overview: every hedge (mode always visible), state, pair, delta, ratio and drift, PnL split, LTV band;
runner health; totals. Refreshes on its own."""

from __future__ import annotations

import streamlit as st

from hedge_core.ui.figures.hedge import equity_figure
from hedge_core.store import Store
from hedge_core.ui.views.equity import equity_curves, hedge_chart_data
from hedge_core.ui.views.hedges import health_view, overview_table, totals
from hedge_core.ui.views.ledger import run_info, runs
from pages._auth import require_sign_in
from pages._shared import REFRESH_S, cached_read, fmt_money, link, runner_hedges, store

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Overview")
MAX_CURVES = 12  # equity curves drawn at most (the most recently started running hedges)
lk = link()


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    summaries, health = runner_hedges(lk)
    hv = health_view(health)
    try:
        journal = runs(store())
    except Exception as exc:  # noqa: BLE001 - the live table still shows
        journal = None
        st.caption(f"journal not readable right now ({type(exc).__name__}); showing the runner's hedges only")
    table = overview_table(summaries, journal)
    t = totals(table)
    c = st.columns(6)
    c[0].metric("runner", ("DEGRADED" if hv.degraded else "up") if hv.ok else "DOWN", help=hv.label)
    c[1].metric("heartbeat age", f"{hv.heartbeat_age_s:.1f} s" if hv.heartbeat_age_s == hv.heartbeat_age_s else "n/a")
    c[2].metric("active hedges", f"{int(t['active'])}", help=f"{int(t['live_mode'])} in LIVE mode")
    c[3].metric("net PnL (USDT)", fmt_money(t["pnl"]))
    c[4].metric("funding (USDT)", fmt_money(t["funding"]))
    c[5].metric("fees (USDT)", fmt_money(t["fees"]))
    if not lk.up:
        st.warning(lk.message)
    if table.empty:
        st.info("No hedges yet. Start one on the **Start a hedge** page (paper mode needs no keys).")
        return
    if (table["mode"] == "live").any():
        st.error(f"{int((table['mode'] == 'live').sum())} hedge(s) in LIVE mode: real money.", icon=":material/paid:")
    if hv.degraded:
        st.warning(hv.label, icon=":material/warning:")
    # what fits 1,400 px, PnL first; a column is shown only when some hedge fills it (DEGRADED, LTV);
    # delta, price PnL, drift and params are on the hedge's page
    table = table.assign(asset=table["pair"].str.split("/").str[0].str.strip())
    cols = ["hedge_id", "pnl", "state", "mode", "degraded", "asset", "funding", "fees", "hedge_ratio", "ltv_band"]
    cols = [c for c in cols if c not in ("degraded", "ltv_band") or table[c].astype(bool).any()]
    st.caption("money in USDT; ratio = perp notional / spot notional")
    st.dataframe(
        table, hide_index=True, width="stretch", key="overview_table", column_order=cols,
        column_config={
            "hedge_id": st.column_config.TextColumn("hedge", width="medium"),
            "state": st.column_config.TextColumn("state", width="medium"),  # full names: MONITORING_POSITIONS
            "degraded": st.column_config.TextColumn("DEGRADED", help="conditions the runner does not trust"),
            "mode": st.column_config.TextColumn("mode", width="small", help="paper / recommend / live"),
            "asset": st.column_config.TextColumn("asset", width="small", help="the spot leg's base asset"),
            "hedge_ratio": st.column_config.NumberColumn("ratio", format="%.3f", width="small"),
            "pnl": st.column_config.NumberColumn("net PnL", format="%.2f", width="small"),
            "funding": st.column_config.NumberColumn("funding", format="%.2f", width="small"),
            "fees": st.column_config.NumberColumn("fees", format="%.2f", width="small"),
            "ltv_band": st.column_config.TextColumn("LTV band", width="small"),
        })
    st.session_state["_overview_ids"] = table["hedge_id"].tolist()
    equity(summaries, journal)


def equity(summaries: list[dict], journal) -> None:  # noqa: ANN001 - a DataFrame or None
    rd = store()
    data = {}
    for s in summaries[-MAX_CURVES:]:
        hid = s["hedge_id"]
        row = journal[journal["hedge_id"] == hid] if journal is not None and len(journal) else None
        trans = cached_read(rd, Store.read_table, "transitions", hedge_id=hid)
        data[hid] = cached_read(rd, hedge_chart_data, hid, venue=s.get("venue") or "binance",
                                spot_symbol=s.get("spot_symbol") or "BTC/USDT",
                                timeframe=run_info(row).get("timeframe") or "1h", transitions=trans,
                                last_ts=s.get("last_ts"), max_points=400)
    curves = equity_curves(data)
    if curves:
        st.plotly_chart(equity_figure(curves), width="stretch", key="overview_equity")


live()
ids = st.session_state.get("_overview_ids") or []
if ids:
    c1, c2 = st.columns([3, 1])
    pick = c1.selectbox("Open a hedge", ids, key="overview_pick")
    if c2.button("Open detail", key="overview_open"):
        st.session_state["detail_hedge"] = pick
        st.switch_page("pages/hedge_detail.py")
