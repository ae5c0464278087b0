"""Pure plotly figure builders: data in, ``go.Figure`` out (used by the panel and notebooks)."""
