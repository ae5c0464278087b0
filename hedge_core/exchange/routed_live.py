"""Legs on two venues in live and recommend mode: one live ccxt adapter per venue behind a
:class:`~hedge_core.exchange.routed.RoutedAdapter`.

Each venue is its own account: its own credentials (:func:`hedge_core.exchange.credentials.
load_credentials` with that venue's ``HEDGE_<VENUE>_API_*`` variables or its table of the keys
file), its own rate-limit governor (``governor_for(venue, key)``, made by each
:class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`), its own fees, funding and margin.
Nothing is shared and no money moves between the two (``RoutedAdapter.transfer`` refuses).

Live needs keys on BOTH venues: the credentials of both are looked up before any adapter is made,
and a venue without keys is refused naming that venue and the variables to set (nothing is built,
nothing is sent). Recommend reads only, so, as on one venue, keys are used where configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hedge_core.errors import InvalidInput
from hedge_core.exchange.routed import RoutedAdapter

__all__ = ["live_leg_adapters", "routed_live"]


def _keys_hint(venue: str) -> str:
    p = f"HEDGE_{venue.upper()}_API_"
    return f"{venue}: set {p}KEY and {p}SECRET (or a {venue!r} table in HEDGE_KEYS_FILE)"


def routed_live(mode: str, spot_venue: str, perp_venue: str, *, confirm_live: bool = False,
                env: Mapping[str, str] | None = None, **live_kwargs: Any) -> Any:
    """The adapter of a live or recommend hedge whose spot leg is on ``spot_venue`` and perp leg on
    ``perp_venue``.

    Parameters
    ----------
    mode : str
        ``'live'`` (real orders on both venues) or ``'recommend'`` (reads both venues, sends nothing).
    spot_venue, perp_venue : str
        Lowercase ccxt ids of the two legs' venues; they must differ.
    confirm_live : bool
        Must be True for ``'live'``: real money moves on two venues.
    env : mapping, optional
        Environment the keys are read from (default ``os.environ``; tests pass a dict).
    **live_kwargs
        Passed to both ``CcxtLiveAdapter`` (tests: ``session=...``).

    Returns
    -------
    RoutedAdapter (live) or RecommendAdapter over a RoutedAdapter (recommend).

    Raises
    ------
    InvalidInput
        ``mode`` is not live/recommend, the venues are equal or not lowercase ids, ``confirm_live``
        is not True for live, or (live) a venue has no keys: the field is ``credentials`` and the
        message names every venue without keys and the variables to set. Nothing is built then.
    """
    spot, perp = live_leg_adapters(mode, spot_venue, perp_venue, confirm_live=confirm_live, env=env, **live_kwargs)
    routed = RoutedAdapter(spot, perp)
    if mode == "live":
        return routed
    from hedge_core.exchange.recommend import RecommendAdapter

    return RecommendAdapter(routed)


def live_leg_adapters(mode: str, spot_venue: str, perp_venue: str, *, confirm_live: bool = False,
                      env: Mapping[str, str] | None = None, legs: tuple[str, str] = ("spot", "perp"),
                      **live_kwargs: Any) -> tuple[Any, Any]:
    """The two venues' ``CcxtLiveAdapter`` (each with its own keys), after the checks of :func:`routed_live`;
    ``legs`` names the two legs in the refusal of a venue without keys (nothing is built then)."""
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.exchange.credentials import load_credentials

    if mode not in ("live", "recommend"):
        raise InvalidInput("mode", mode, "'live' or 'recommend' (two paper venues: routed_paper.RoutedPaper)")
    for field, v in (("venue", spot_venue), ("perp_venue", perp_venue)):
        if not isinstance(v, str) or not v or v != v.lower():
            raise InvalidInput(field, v, "a lowercase ccxt id such as 'binance'")
    if spot_venue == perp_venue:
        raise InvalidInput("perp_venue", perp_venue, f"a venue other than the {legs[0]} leg's {spot_venue!r}")
    if mode == "live" and confirm_live is not True:
        raise InvalidInput("confirm_live", confirm_live,
                           "True: live mode sends real orders with real money on two venues")
    creds = {v: load_credentials(v, env=env, required=False) for v in (spot_venue, perp_venue)}
    missing = [v for v, c in creds.items() if c is None]
    if mode == "live" and missing:
        names = {spot_venue: legs[0], perp_venue: legs[1]}
        raise InvalidInput("credentials", None, "API keys on each leg's venue; missing for the "
                           + "; ".join(f"{names[v]} leg on {_keys_hint(v)}" for v in missing))
    return (CcxtLiveAdapter(spot_venue, creds[spot_venue], **live_kwargs),
            CcxtLiveAdapter(perp_venue, creds[perp_venue], **live_kwargs))
