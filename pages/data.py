"""Data: coverage and quality per series, import files, download from an exchange (with progress)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from hedge_core.data.download import DownloadProgress, download, make_exchange
from hedge_core.data.importers import import_path
from hedge_core.data.quality import store_report
from hedge_core.data.shared import shared_data_dir
from hedge_core.errors import HedgeError
from hedge_core.ui.views.market import coverage_table
from pages._auth import require_sign_in
from pages._shared import after_write, cached_series, db_path, store, write_access

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Data")
st.caption(f"database: `{db_path()}`")

series = cached_series(store())
st.subheader("Coverage")
if series.empty:
    st.info("No market data yet: import files or download below.")
else:
    st.dataframe(coverage_table(series), hide_index=True, width="stretch")

st.subheader("Quality")
st.caption("Coverage against the expected grid, gaps (real outages stay gaps), duplicates, OHLC errors, "
           "return outliers (robust z-score) and funding times off the venue's schedule.")
if st.button("Check quality", disabled=series.empty):
    with st.spinner("checking every series ..."):
        table, _details = store_report(store())
    st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Import files")
shared = shared_data_dir()
default = str(shared) if shared else ""
with st.form("import"):
    path = st.text_input("File or folder", value=default,
                         help="The tidy CSV layout of ../shared/data, freqtrade feather files, Binance bulk "
                              "klines/fundingRate files (zipped or not), or a folder of them.")
    go = st.form_submit_button("Import")
if go:
    if not path or not Path(path).exists():
        st.error(f"path={path!r} does not exist: give an existing file or folder.")
    else:
        target = write_access("Import")
        if target is None:
            st.stop()
        with st.spinner(f"importing {path} (all or nothing) ..."):
            try:
                summary = import_path(target, path)
            except HedgeError as exc:
                st.error(f"Nothing was imported: {exc}")
            else:
                st.success(f"imported {int(summary['rows'].sum()):,} rows in {len(summary)} series "
                           "(re-importing the same files changes nothing)")
                st.dataframe(summary, hide_index=True, width="stretch")
                skipped = summary.attrs.get("skipped") or []
                if skipped:
                    st.caption(f"skipped {len(skipped)} files whose names match no known layout")
            finally:
                after_write()

st.subheader("Download from an exchange")
with st.form("download"):
    c1, c2, c3 = st.columns(3)
    venue = c1.selectbox("Venue", ["binance", "bybit", "okx"])
    symbols = c2.multiselect("Assets", ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"],
                             default=["BTC/USDT", "ETH/USDT"])
    days = c3.number_input("Days of history", min_value=1, max_value=3650, value=365)
    timeframe = st.selectbox("Bar size", ["1h", "1m", "5m", "15m", "4h", "1d"])
    fetch = st.form_submit_button("Download (incremental: only what is missing)")
target = write_access("Download") if fetch else None
if fetch and target is not None:
    bar = st.progress(0.0, text="connecting ...")

    def on_progress(p: DownloadProgress) -> None:
        bar.progress(min(max(p.fraction, 0.0), 1.0),
                     text=f"{p.venue} {p.symbol} {p.kind}: {p.rows:,} rows, at {p.cursor:%Y-%m-%d %H:%M}")

    try:
        summary = download(target, make_exchange(venue), symbols, timeframe=timeframe, days=float(days),
                           progress=on_progress, show_bar=False)
    except HedgeError as exc:
        st.error(f"Download stopped: {exc}")
    except Exception as exc:  # ccxt network errors arrive untyped here; say what to do
        st.error(f"Download failed ({type(exc).__name__}: {exc}). Check the network, then run it again: "
                 "it resumes where it stopped.")
    else:
        bar.progress(1.0, text="done")
        st.dataframe(summary, hide_index=True, width="stretch")
    finally:
        after_write()
