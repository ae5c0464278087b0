"""Helpers shared by the panel pages (UI plumbing only; no math, no SQL)."""

from __future__ import annotations

import os

import streamlit as st

from hedge_core.store import Store, default_db_path


def db_path() -> str:
    return os.environ.get("HEDGE_DB") or str(default_db_path())


def store() -> Store:
    """A store that opens the file only per call, so the CLI and other readers are never locked out."""
    return Store(db_path(), hold=False)


def synthetic_badge(flag: bool) -> None:
    if flag:
        st.warning("SYNTHETIC data from the demo market generator — not real prices.", icon=":material/science:")
