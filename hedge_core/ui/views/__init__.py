"""View models for the panel and notebooks: what a page shows, computed from the store and hedge_core.

Pure functions over the store's typed API (no SQL, no Streamlit); every one has a test.
"""
