"""Choose an exchange adapter by trading mode: paper, live or recommend.

``make_adapter("paper", "binance")`` needs nothing; ``"live"`` sends real orders and therefore
needs API keys AND an explicit ``confirm_live=True`` (otherwise InvalidInput, before anything is
built or any network object exists); ``"recommend"`` reads market data and the account through
``market_data`` (or a live ccxt adapter) and sends nothing.

The live adapter is imported lazily so paper runs and backtests never import ccxt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.types import TradingMode

__all__ = ["make_adapter"]


def make_adapter(mode: TradingMode | str, venue: str = "binance", *, credentials: Any = None,
                 confirm_live: bool = False, paper_config: Any = None,
                 balances: Mapping[str, Mapping[str, float]] | None = None,
                 state_path: str | os.PathLike[str] | None = None, market_data: Any = None,
                 clock: Callable[[], pd.Timestamp] | None = None, env: Mapping[str, str] | None = None,
                 **live_kwargs: Any) -> Any:
    """Build the adapter for ``mode``.

    Parameters
    ----------
    mode : TradingMode or str
        ``'paper'``, ``'live'`` or ``'recommend'``.
    venue : str
        Lowercase ccxt id.
    credentials : hedge_core.exchange.credentials.Credentials, optional
        Live/recommend keys; when None they are looked up with
        :func:`hedge_core.exchange.credentials.load_credentials` (environment / keys file).
    confirm_live : bool
        Must be True for ``'live'``: real money moves.
    paper_config, balances, state_path
        Paper: :class:`PaperConfig`, initial wallets, and the state file. When the file exists the
        run resumes from it and ``paper_config``/``balances`` are ignored (the saved state wins).
    market_data : ExchangeAdapter, optional
        Recommend: where reads go (default: a live ccxt adapter with the keys, if any).
    clock : callable, optional
        Recommend: time stamp of recommendations.
    env : mapping, optional
        Environment used to look up keys (tests); default ``os.environ``.
    **live_kwargs
        Passed to ``CcxtLiveAdapter`` (e.g. ``sandbox=True``, ``session=...``).
    """
    try:
        m = TradingMode(mode)
    except ValueError:
        raise InvalidInput("mode", mode, f"one of {[x.value for x in TradingMode]}") from None
    if not isinstance(venue, str) or not venue or venue != venue.lower():
        raise InvalidInput("venue", venue, "a lowercase ccxt id such as 'binance'")

    if m is TradingMode.PAPER:
        from hedge_core.exchange.paper import PaperExchange
        from hedge_core.exchange.paper.core import PaperConfig, PaperCore

        cfg = paper_config if paper_config is not None else PaperConfig(venue=venue)
        if cfg.venue != venue:
            raise InvalidInput("paper_config.venue", cfg.venue, f"the requested venue {venue!r}")

        def fresh() -> PaperCore:
            return PaperCore(cfg, balances=balances)

        if state_path is not None:
            return PaperExchange.open(state_path, fresh)
        return PaperExchange(fresh())

    if m is TradingMode.LIVE:
        if confirm_live is not True:
            raise InvalidInput("confirm_live", confirm_live,
                               "True: live mode sends real orders with real money; pass confirm_live=True")
        creds = _credentials(venue, credentials, env, required=True)
        from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter

        return CcxtLiveAdapter(venue, creds, **live_kwargs)

    # recommend
    from hedge_core.exchange.recommend import RecommendAdapter

    if market_data is None:
        creds = _credentials(venue, credentials, env, required=False)
        from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter

        market_data = CcxtLiveAdapter(venue, creds, **live_kwargs)
    return RecommendAdapter(market_data, clock=clock)


def _credentials(venue: str, credentials: Any, env: Mapping[str, str] | None, *, required: bool) -> Any:
    if credentials is not None:
        if not (getattr(credentials, "api_key", None) and getattr(credentials, "secret", None)):
            raise InvalidInput("credentials", "<missing api_key/secret>", "Credentials with an api_key and a secret")
        return credentials
    from hedge_core.exchange.credentials import load_credentials

    creds = load_credentials(venue, env=env, required=False)
    if creds is None and required:
        raise InvalidInput("credentials", None,
                           f"API keys for {venue}: set HEDGE_{venue.upper()}_API_KEY and "
                           f"HEDGE_{venue.upper()}_API_SECRET, or HEDGE_KEYS_FILE")
    return creds
