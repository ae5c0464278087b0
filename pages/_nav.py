"""The panel's one navigation: every page, its title and icon (UI plumbing only).

``app.py`` mounts it with :func:`st.navigation`; ``pages/_auth.py`` mounts the same list when a page was
opened through Streamlit's legacy ``pages/`` folder mode (see there) so a bookmark lands in this navigation.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

# (script, title, icon); the first is the default page
PAGES: tuple[tuple[str, str, str], ...] = (
    ("pages/overview.py", "Overview", ":material/dashboard:"),
    ("pages/start_hedge.py", "Start a hedge", ":material/play_circle:"),
    ("pages/hedge_detail.py", "Hedge detail", ":material/monitoring:"),
    ("pages/risk.py", "Risk and LTV", ":material/shield:"),
    ("pages/book.py", "Book", ":material/account_balance:"),
    ("pages/research.py", "Research", ":material/science:"),
    ("pages/scanner.py", "Funding scanner", ":material/radar:"),
    ("pages/params.py", "Parameter sets", ":material/tune:"),
    ("pages/market_data.py", "Market data", ":material/candlestick_chart:"),
    ("pages/data.py", "Data", ":material/database:"),
    ("pages/logs.py", "Logs", ":material/receipt_long:"),
    ("pages/settings.py", "Settings", ":material/settings:"),
)


def page_config() -> None:
    st.set_page_config(page_title="hedge", page_icon=":material/balance:", layout="wide")


def pages() -> list[StreamlitPage]:
    """The panel's pages as Streamlit pages (their URL paths are the file names: /hedge_detail, ...)."""
    return [st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon) in enumerate(PAGES)]


def navigation(*, visible: bool = True) -> StreamlitPage:
    """Mount the panel's pages; return the page the URL asks for.

    ``visible=False`` hides the menu (before sign-in) but keeps the URL's page, so a bookmark opens it
    once the browser session has signed in.
    """
    return st.navigation(pages(), position="sidebar" if visible else "hidden")
