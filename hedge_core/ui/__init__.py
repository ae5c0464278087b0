"""What the panel and the notebooks show: view-models (:mod:`.views`) and pure plotly builders (:mod:`.figures`).

No math, no SQL, no ccxt here beyond calling hedge_core's own functions.
"""
