"""Plotly in notebooks without the network: nothing a chart needs is fetched from a CDN.

Plotly's HTML renderers add ``<script src="https://cdnjs.cloudflare.com/.../mathjax/...">`` to every
figure (for LaTeX, which no chart here uses), and ``notebook_connected`` loads plotly.js itself from
``cdn.plot.ly``. :func:`use_offline_plotly` selects ``plotly_mimetype+hedge_offline``:

- ``plotly_mimetype``: the figure as JSON, drawn by the plotly extension that ships with the plotly
  package (JupyterLab, Notebook 7, VS Code);
- ``hedge_offline``: plotly's ``notebook`` renderer (plotly.js embedded once in the notebook) minus the
  MathJax CDN script, for classic front ends and ``nbconvert --to html``.
"""

from __future__ import annotations

import re
from typing import Any

import plotly.io as pio
from plotly.io.base_renderers import NotebookRenderer

OFFLINE = "hedge_offline"
RENDERERS = f"plotly_mimetype+{OFFLINE}"
_MATHJAX_CDN = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^\"']*mathjax[^\"']*[\"'][^>]*>\s*</script>",
                          re.IGNORECASE)


class OfflineNotebookRenderer(NotebookRenderer):
    """The ``notebook`` renderer (``connected=False``: plotly.js embedded) without the MathJax CDN script."""

    def __init__(self) -> None:
        super().__init__(connected=False)

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        bundle = super().to_mimebundle(fig_dict)
        bundle["text/html"] = _MATHJAX_CDN.sub("", bundle["text/html"])
        return bundle


def use_offline_plotly() -> str:
    """Make every figure shown in this kernel render offline; returns the renderer string set.

    Call once at the top of a notebook (it embeds plotly.js in that cell's output).
    """
    pio.renderers[OFFLINE] = OfflineNotebookRenderer()
    pio.renderers.default = RENDERERS
    return RENDERERS
