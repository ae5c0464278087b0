"""Market data: coverage per series, the stored instruments per venue, and spot vs perp price, basis and
funding of a pair."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hedge_core.ui.figures.market import candle_figure, pair_figure
from hedge_core.ui.views.market import (
    INSTRUMENTS_EMPTY,
    candles,
    coverage_table,
    instruments_view,
    pair_view,
    pairs_available,
)
from pages._auth import require_sign_in
from pages._shared import cached_read, cached_series, db_path, store, synthetic_badge

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Market data")
st.caption(f"database: `{db_path()}`")



def instruments_section() -> None:
    """The store's instruments per venue (limits, brackets, read date), or how to fill the table."""
    st.subheader("Instruments")
    inst = cached_read(store(), instruments_view)
    if inst.empty:
        st.info(INSTRUMENTS_EMPTY)
        return
    st.caption(f"{len(inst)} instruments on {inst['venue'].nunique()} venues, from the store's instruments table "
               "(`hedge data instruments` fills it; a symbol not in it uses the committed snapshot)")
    st.dataframe(inst, hide_index=True, width="stretch", key="instruments_table")


series = cached_series(store())
if series.empty:
    st.info("The database holds no market data yet. Seed it with `make app` (downloads real data when the "
            "network is reachable, else the demo market) or import files: `hedge data import ../shared/data`.")
    instruments_section()
    st.stop()

cov = coverage_table(series)
st.subheader("Coverage")
st.dataframe(cov, hide_index=True, width="stretch")
instruments_section()

pairs = pairs_available(series)
if pairs.empty:
    st.info("No pair has both a spot and a perp series yet.")
    st.stop()

st.subheader("Spot vs perp")
labels = [f"{r.venue} · {r.spot_symbol} · {r.timeframe}" for r in pairs.itertuples()]
choice = st.selectbox("Pair", range(len(labels)), format_func=lambda i: labels[i])
pair = pairs.iloc[choice]
rows = cov[(cov["venue"] == pair["venue"]) & (cov["symbol"] == pair["spot_symbol"]) & (cov["kind"] == "spot")]
first, last = pd.Timestamp(rows["first"].iloc[0]), pd.Timestamp(rows["last"].iloc[0])
default_start = max(first, last - pd.Timedelta(days=90))
window = st.date_input("Window (UTC)", value=(default_start.date(), last.date()),
                       min_value=first.date(), max_value=last.date())
if not isinstance(window, tuple) or len(window) != 2:
    st.info("Pick a start and an end date.")
    st.stop()
start = pd.Timestamp(window[0], tz="UTC")
end = pd.Timestamp(window[1], tz="UTC") + pd.Timedelta(days=1)
view = cached_read(store(), pair_view, pair["venue"], pair["spot_symbol"], start, end,
                   timeframe=pair["timeframe"])
synthetic_badge(view.synthetic)
c1, c2, c3 = st.columns(3)
c1.metric("median basis (bps)", f"{view.frame['basis_bps'].median():.2f}")
c2.metric("mean funding APR", f"{view.funding['apr'].mean() * 100:.2f} %" if len(view.funding) else "n/a")
c3.metric("bars shown", f"{len(view.frame):,} × {view.timeframe}")
style = st.radio("Price chart", ["lines (spot, perp, basis, funding)", "candlesticks"], horizontal=True,
                 key="market_chart_style")
if style == "candlesticks":
    leg = st.radio("Series", ["spot", "perp"], horizontal=True, key="market_candle_leg")
    sym = pair["spot_symbol"] if leg == "spot" else view.perp_symbol
    ohlc, tf = cached_read(store(), candles, pair["venue"], sym, leg, start, end, timeframe=pair["timeframe"])
    st.plotly_chart(candle_figure(ohlc, title=f"{pair['venue']} {sym} ({tf} candles)", synthetic=view.synthetic),
                    width="stretch")
else:
    st.plotly_chart(pair_figure(view), width="stretch")
