"""The Streamlit control panel. Thin: widgets -> hedge_core -> figure builders. Run: `make app`.

One navigation (pages/_nav.py) holds every page; a bookmark such as /hedge_detail opens its page.
Sign-in (``HEDGE_PANEL_PASSWORD``, docs/panel-sign-in.md) comes before the sidebar and every page.
Every page shares the sidebar: runner health and the flatten-all kill switch (with confirmation).
"""

from __future__ import annotations

from pages._auth import require_sign_in, signed_in_or_open
from pages._nav import navigation, page_config
from pages._sidebar import panel_sidebar

page_config()
nav = navigation(visible=signed_in_or_open())
require_sign_in(status=True)  # before anything else is drawn or any button can act
panel_sidebar()
nav.run()
