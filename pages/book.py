"""The book: every hedge of the runner in one view (net delta per asset, exposure, margin and
nearest liquidation per venue, netting, funding per day, LTV, VaR, drawdown, book guards).
Numbers and guards: docs/book.md. Refreshes on its own."""

from __future__ import annotations

import streamlit as st

from hedge_core.ui.figures.book import book_figure
from hedge_core.ui.views.book import book_headline, book_tables
from pages._auth import require_sign_in
from pages._shared import REFRESH_S, fmt_money, link, show_error

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Book")
lk = link()
c1, c2 = st.columns(2)
confidence = c1.select_slider("VaR confidence", options=[0.9, 0.95, 0.975, 0.99, 0.995], value=0.99, key="book_conf")
horizon = c2.number_input("VaR horizon (bars of 1h)", min_value=1, max_value=10_000, value=24, step=1,
                          key="book_horizon")


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    if not lk.up:
        st.warning(lk.message or "No runner is running: the book is the runner's hedges.")
        return
    try:
        book = lk.client.book(confidence=confidence, horizon=int(horizon))
    except Exception as exc:  # noqa: BLE001 - said on the page; it refreshes on its own
        show_error(exc, "the book")
        return
    h, t = book_headline(book), book_tables(book)
    for line in h["guards"]:  # each with its action (block_entries or flatten)
        st.error(f"book guard: {line}")
    m = st.columns(6)
    m[0].metric("hedges", h["hedges"])
    m[1].metric("gross exposure", fmt_money(h["gross"]))
    m[2].metric("net exposure", fmt_money(h["net"]))
    m[3].metric("margin used", fmt_money(h["margin_used"]))
    m[4].metric("PnL (today)", fmt_money(h["pnl"]), delta=fmt_money(h["day_pnl"]))
    m[5].metric("drawdown", fmt_money(h["drawdown"]), help="peak book PnL - now (kept over restarts)")
    v = st.columns(4)
    if h["var_error"]:
        v[0].metric("VaR", "n/a", help=h["var_error"])
        st.caption(f"VaR not computed: {h['var_error']}")
    else:
        v[0].metric(f"VaR historical ({h['var_confidence']}, {h['var_horizon']} bars)", fmt_money(h["var_historical"]))
        v[1].metric("VaR parametric", fmt_money(h["var_parametric"]))
        v[2].metric("diversification", fmt_money(h["var_diversification"]))
    v[3].metric("funding earned", fmt_money(h["funding"]))
    st.plotly_chart(book_figure(t["assets"], t["venues"]), width="stretch", key="book_fig")
    st.subheader("Net delta per asset")
    st.dataframe(t["assets"], hide_index=True, width="stretch", key="book_assets")
    st.subheader("Per venue")
    st.dataframe(t["venues"], hide_index=True, width="stretch", key="book_venues",
                 column_config={"liq_distance": st.column_config.NumberColumn("nearest liquidation", format="percent")})
    st.subheader("Netted per asset and venue")
    st.dataframe(t["netted"], hide_index=True, width="stretch", key="book_netted")
    st.subheader("Funding earned per day (UTC)")
    if len(t["funding"]):
        st.bar_chart(t["funding"].set_index("day")["amount"])
    else:
        st.caption("no funding booked yet")
    if len(t["loans"]):
        st.subheader("Loans")
        st.dataframe(t["loans"], hide_index=True, width="stretch", key="book_loans",
                     column_config={"ltv": st.column_config.NumberColumn(format="percent")})


live()
