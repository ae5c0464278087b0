"""The Streamlit control panel. Thin: widgets -> hedge_core -> figure builders. Run: `make app`."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="hedge", page_icon=":material/balance:", layout="wide")

pages = [
    st.Page("pages/market_data.py", title="Market data", icon=":material/candlestick_chart:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
]
st.navigation(pages).run()
