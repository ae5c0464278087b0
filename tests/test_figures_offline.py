"""use_offline_plotly: figures render with nothing fetched from the network (no plotly.js or MathJax CDN)."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from hedge_core.ui.figures.offline import OFFLINE, RENDERERS, OfflineNotebookRenderer, use_offline_plotly

REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']?(?:https?:)?//", re.IGNORECASE)


@pytest.fixture
def restore_default():
    saved = pio.renderers.default
    yield
    pio.renderers.default = saved


def _fig() -> go.Figure:
    return go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]), layout={"title": "t"})


def test_plotlys_own_notebook_renderer_fetches_mathjax_from_a_cdn() -> None:
    # the reason this module exists; if plotly stops doing it, the stripping becomes a no-op
    html = pio.renderers["notebook"].to_mimebundle(_fig().to_dict())["text/html"]
    assert REMOTE_SCRIPT.search(html) and "mathjax" in html.lower()


def test_offline_renderer_html_has_no_remote_script_and_still_draws() -> None:
    html = OfflineNotebookRenderer().to_mimebundle(_fig().to_dict())["text/html"]
    assert REMOTE_SCRIPT.search(html) is None
    assert "Plotly.newPlot" in html and '"title":{"text":"t"}' in html.replace(" ", "")


def test_use_offline_plotly_selects_mimetype_and_offline_html(restore_default, capsys) -> None:
    assert use_offline_plotly() == RENDERERS == pio.renderers.default
    assert isinstance(pio.renderers[OFFLINE], OfflineNotebookRenderer)
    assert pio.renderers[OFFLINE].connected is False  # plotly.js embedded, not loaded from cdn.plot.ly
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(_fig().to_dict())
    assert bundle["application/vnd.plotly.v1+json"]["layout"]["title"]["text"] == "t"
