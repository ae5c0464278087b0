"""Funding scanner: carry trades ranked by expected net carry after costs; a row's spread history; start a
hedge from a same-venue row (prefills the Start-a-hedge form, paper mode)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hedge_core.analytics.scanner import KINDS, ScanConfig
from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.ui.figures.scanner import ranked_figure, spread_figure
from hedge_core.ui.views.scanner import (
    PREFILL_KEY,
    StartPrefill,
    display_table,
    read_inputs,
    row_spread,
    scan_view,
    start_prefill,
)
from pages._auth import require_sign_in
from pages._shared import cached_read, show_error, store, synthetic_badge

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Funding scanner")
st.caption("Spot/perp carry on one venue and perp/perp carry across venues, ranked by the expected net carry "
           "over the hold: mean funding APR over the lookback (each venue's own settlement interval) x hold / 365, "
           "minus both legs' taker fees and slippage to open and close. See docs/scanner.md.")
try:
    inputs = cached_read(store(), read_inputs)
except InvalidInput as exc:
    st.info(f"Nothing to scan: {exc}")
    st.stop()
except HedgeError as exc:
    show_error(exc, "Reading the store")
    st.stop()
synthetic_badge("demo" in inputs.venues)

with st.form("scan"):
    c1, c2, c3, c4 = st.columns(4)
    lookback = c1.number_input("Lookback (days)", value=30.0, min_value=0.1, max_value=3650.0, key="scan_lookback")
    hold = c2.number_input("Hold (days)", value=30.0, min_value=0.1, max_value=3650.0, key="scan_hold")
    min_hist = c3.number_input("Min history (days)", value=7.0, min_value=0.0, max_value=3650.0, key="scan_min_hist")
    top = c4.number_input("Top N", value=20, min_value=1, max_value=10_000, step=1, key="scan_top")
    c5, c6, c7, c8 = st.columns(4)
    venues = c5.multiselect("Venues", inputs.venues, default=inputs.venues, key="scan_venues")
    kinds = c6.multiselect("Kinds", list(KINDS), default=list(KINDS), key="scan_kinds",
                           help="spot_perp: both legs on one venue; perp_perp: long where funding is lowest, "
                                "short where it is highest, on two venues")
    slip = c7.number_input("Slippage per fill (bps)", value=1.0, min_value=0.0, max_value=100.0, key="scan_slip")
    borrow = c8.number_input("Borrow APR to short spot (%)", value=0.0, min_value=0.0, max_value=99.0,
                             key="scan_borrow")
    st.form_submit_button("Scan", type="primary")

try:
    cfg = ScanConfig(lookback_days=lookback, hold_days=hold, min_history_days=min_hist, top=int(top),
                     venues=tuple(venues) or None, kinds=tuple(kinds), slippage_rate=slip / 1e4,
                     borrow_apr=borrow / 100)
    if not venues:
        raise InvalidInput("venues", [], f"one or more of {inputs.venues}")
    view = scan_view(inputs, cfg)
except InvalidInput as exc:
    st.error(f"Not scanned — {exc.field}: {exc}", icon=":material/error:")
    st.stop()

st.caption(f"as of {view.as_of:%Y-%m-%d %H:%M} UTC (the last stored funding time) · {len(view.ranked)} rows")
if view.ranked.empty:
    st.info(f"No pair has {cfg.min_history_days:g} days of funding history in the window: lower 'Min history' "
            "or import more funding.")
    st.stop()
table = display_table(view.ranked)
fmt = {"APR %": "%.2f", "costs %": "%.3f", "net %": "%.3f", "net APR %": "%.2f", "break-even d": "%.1f",
       "favourable %": "%.0f", "std APR %": "%.2f", "history d": "%.0f", "min size (quote)": "%.2f"}
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format=f) for c, f in fmt.items()})
st.plotly_chart(ranked_figure(table), width="stretch")

labels = [f"#{r.rank} {r.symbol} · {r.direction}" for r in view.ranked.itertuples()]
pick = st.selectbox("Row", range(len(labels)), format_func=lambda i: labels[i], key="scan_row")
row = view.ranked.iloc[pick].to_dict()
try:
    hist = row_spread(view, row)
except InvalidInput as exc:
    show_error(exc, "Spread history")
else:
    st.plotly_chart(spread_figure(hist, row, lookback_start=view.as_of - pd.Timedelta(days=cfg.lookback_days)),
                    width="stretch")

pre = start_prefill(row)
if isinstance(pre, StartPrefill):
    if st.button("Start a hedge from this row (paper)", type="primary", key="scan_start",
                 help="prefills the Start-a-hedge form: paper mode, the spot symbol and at least the smallest "
                      "hedgeable size; nothing starts until you press Start there"):
        st.session_state[PREFILL_KEY] = pre.as_dict()
        st.switch_page("pages/start_hedge.py")
else:
    st.warning(f"Cannot start a hedge from this row: {pre}", icon=":material/block:")
