"""Research: backtest a parameter set, or a small sweep of it, over a chosen window (progress bar);
tearsheet and heatmap; export the chosen set as a new version with its provenance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hedge_core.params import store as param_store
from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.ui.figures.research import heatmap_figure, tearsheet_or_equity
from hedge_core.ui.figures.sweep import heatmap as sweep_heatmap
from hedge_core.ui.figures.tearsheet import kpi_table, to_html_text
from hedge_core.ui.views.market import coverage_table, pairs_available
from hedge_core.ui.views.params import choices
from hedge_core.ui.views.research import (
    MAX_SWEEP_RUNS,
    kpi_columns,
    numeric_fields,
    parse_values,
    run_set,
    run_sweep,
    set_field,
    sweep_grid,
    default_sweep,
    sweep_pivot,
)
from pages._auth import require_sign_in
from pages._shared import cached_series, db_path, show_error, store, synthetic_badge

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Research")
rd = store()
series = cached_series(rd)
pairs = pairs_available(series)
sets = choices(param_store.list_sets())
if pairs.empty:
    st.info("No pair with both spot and perp bars in the store: seed or import data first (Data page).")
    st.stop()
if sets.empty:
    st.info("No parameter set to research yet: export one on the **Parameter sets** page.")
    st.stop()

labels = [f"{r.venue} · {r.spot_symbol} · {r.timeframe}" for r in pairs.itertuples()]
c1, c2 = st.columns(2)
pi = c1.selectbox("Market", range(len(labels)), format_func=lambda i: labels[i], key="research_pair")
ref = c2.selectbox("Parameter set", sets["ref"].tolist(), key="research_ref")
pair = pairs.iloc[pi]
synthetic_badge(pair["venue"] == "demo")
cov = coverage_table(series)
row = cov[(cov["venue"] == pair["venue"]) & (cov["symbol"] == pair["spot_symbol"]) & (cov["kind"] == "spot")]
first, last = pd.Timestamp(row["first"].iloc[0]), pd.Timestamp(row["last"].iloc[0])
default_start = max(first + pd.Timedelta(days=3), last - pd.Timedelta(days=30))
window = st.date_input("Window (UTC; the 3 days before it warm up the analytics)",
                       value=(default_start.date(), last.date()), min_value=first.date(), max_value=last.date(),
                       key="research_window")
if not isinstance(window, tuple) or len(window) != 2:
    st.info("Pick a start and an end date.")
    st.stop()
start, end = pd.Timestamp(window[0], tz="UTC"), pd.Timestamp(window[1], tz="UTC") + pd.Timedelta(days=1)
base = param_store.load(ref)
kw = {"venue": pair["venue"], "spot_symbol": pair["spot_symbol"], "timeframe": pair["timeframe"],
      "start": start, "end": end}

tab_bt, tab_sweep = st.tabs(["Backtest", "Small sweep"])
with tab_bt:
    if st.button("Run backtest", type="primary", key="bt_go"):
        bar = st.progress(0.0, text="loading market data ...")
        try:
            bar.progress(0.2, text=f"replaying {ref} through the engine ...")
            res = run_set(rd, base.params, hedge_id="panel-bt", **kw)
        except (HedgeError, ValueError) as exc:
            bar.empty()
            show_error(exc, "Backtest")
        else:
            bar.progress(1.0, text="done")
            st.session_state["research_result"] = (ref, res)
    got = st.session_state.get("research_result")
    if got is not None:
        gref, res = got
        st.caption(f"{gref}: {res.start} -> {res.end}, final state {res.final_state}")
        st.plotly_chart(tearsheet_or_equity(res, f"{gref} backtest"), width="stretch", key="tearsheet")
        st.dataframe(kpi_table(res).drop(columns=["raw"]), hide_index=True, width="stretch", key="kpis")
        st.download_button("Download the tearsheet (HTML, opens offline)", to_html_text(res).encode("utf-8"),
                           file_name=f"tearsheet-{gref.replace('@', '-v')}.html", mime="text/html", key="tearsheet_html")
        ename = st.text_input("Export as name", value=gref.partition("@")[0], key="bt_export_name")
        if st.button("Export this set as a new version (with these KPIs)", key="bt_export"):
            try:
                ps = param_store.export(res.params, ename, backtest=res, created_from="panel",
                                        note=f"panel backtest of {gref} on {pair['venue']} {pair['spot_symbol']}",
                                        db=db_path())
            except InvalidInput as exc:
                st.error(f"Not exported — {exc.field}: {exc}")
            else:
                st.success(f"exported {ps.ref} -> {ps.path}")

with tab_sweep:
    fields = numeric_fields(base.params)
    c1, c2 = st.columns(2)
    dflt_field, dflt_values = default_sweep(base.params)
    xf = c1.selectbox("Field X", fields, index=fields.index(dflt_field) if dflt_field in fields else 0, key="sweep_x")
    xv = c1.text_input("X values", value=dflt_values if xf == dflt_field else "", key="sweep_xv")
    yf = c2.selectbox("Field Y (optional)", ["(none)"] + fields, key="sweep_y")
    yv = c2.text_input("Y values", value="", key="sweep_yv")
    st.caption(f"at most {MAX_SWEEP_RUNS} runs; every variant is validated by the parameter model first")
    if st.button("Run sweep", type="primary", key="sweep_go"):
        try:
            grid = sweep_grid(base.params, xf, parse_values(xv, "X values"),
                              None if yf == "(none)" else yf, parse_values(yv, "Y values") if yf != "(none)" else None)
        except InvalidInput as exc:
            st.error(f"Sweep not run — {exc.field}: {exc}")
        else:
            bar = st.progress(0.0, text=f"0 / {len(grid)} runs")
            try:
                out = run_sweep(rd, grid, progress=lambda i, n: bar.progress(i / n, text=f"{i} / {n} runs"), **kw)
            except (HedgeError, ValueError) as exc:
                show_error(exc, "Sweep")
            else:
                st.session_state["research_sweep"] = (ref, out)
    got = st.session_state.get("research_sweep")
    if got is not None:
        gref, out = got
        kpis = kpi_columns(out)
        if not kpis:
            st.error("every run failed: " + "; ".join(out.table["error"].unique()))
        else:
            kpi = st.selectbox("KPI", kpis, index=kpis.index("net_apr") if "net_apr" in kpis else 0, key="sweep_kpi")
            fig = sweep_heatmap(out.table, out.x_field, out.y_field, kpi) if out.y_field else \
                heatmap_figure(sweep_pivot(out, kpi), kpi=kpi, x_field=out.x_field, y_field=None)
            st.plotly_chart(fig, width="stretch", key="heatmap")
        st.dataframe(out.table, hide_index=True, width="stretch", key="sweep_table")
        st.markdown("**Export a chosen point as a new version**")
        pick = st.selectbox("Run", range(len(out.table)), key="sweep_pick",
                            format_func=lambda i: ", ".join(f"{k}={out.table.iloc[i][k]:g}"
                                                            for k in (out.x_field, out.y_field) if k))
        name = st.text_input("Name", value=gref.partition("@")[0], key="sweep_export_name")
        if st.button("Export chosen set", key="sweep_export"):
            r = out.table.iloc[pick]
            try:
                p = set_field(base.params, out.x_field, float(r[out.x_field]))
                if out.y_field:
                    p = set_field(p, out.y_field, float(r[out.y_field]))
                k = {c: float(r[c]) for c in kpis if pd.notna(r[c])}
                ps = param_store.export(p, name, created_from="panel", kpis=k, data_window=(start, end),
                                        note=f"panel sweep of {gref} on {pair['venue']} {pair['spot_symbol']}",
                                        db=db_path())
            except InvalidInput as exc:
                st.error(f"Not exported — {exc.field}: {exc}")
            else:
                st.success(f"exported {ps.ref} -> {ps.path}")
