"""The last bar instant a runner on live bars has acted on, from the data a test published (not the wall clock).

The runner's market builder (``hedge_core.runner.market.MarketBuilder``, driven by ``HedgeTask.run``) acts on the
update of instant ``t`` (the bars that closed at ``t``) when the feed brings the next event after those bars: a bar
of a later instant, or a settlement at ``t`` (bars before funding at an instant). On a live feed nothing later
than the last published bars arrives, so the LAST published instant is acted on only when some venue settles at
it (docs/live-freshness-preflight.md: "A bar feed acts on the instant of a bar when the next bar arrives").

A test that publishes bars up to the current hour and waits for an update AT the current hour therefore passes
only in the hours a settlement falls on (every 4 h for a 4 h venue) and times out in the others: wait for
:func:`last_acted_instant` instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def last_acted_instant(last_known: pd.Timestamp, *settlements: Iterable[pd.Timestamp],
                       bar: pd.Timedelta = pd.Timedelta(hours=1)) -> pd.Timestamp:
    """The last instant the runner acts on when the published bars end at ``last_known`` (the last bar's close,
    UTC) and the venues settle at ``settlements`` (each venue's published times): ``last_known`` when a venue
    settles at it, else the instant one ``bar`` before (flushed by the last bars' arrival)."""
    last_known = pd.Timestamp(last_known)
    if any(pd.Timestamp(t) == last_known for times in settlements for t in times):
        return last_known
    return last_known - bar
