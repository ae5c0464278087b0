"""Live trading through ccxt: the venue table (:mod:`.venues`), the adapter (:mod:`.adapter`) and its parts.

- :mod:`.adapter`: :class:`~.adapter.CcxtLiveAdapter` (orders, balances, positions, trades);
- :mod:`.account`: leverage, margin and position mode, brackets, countdown cancel;
- :mod:`.funding`: funding rates, history and payments;
- :mod:`.parse`: answer parsing and the redacting logger;
- :mod:`.venues`: the per-venue table (ids, fees, quirks).

Nothing is imported here, so reading the venue table does not load ccxt.
"""
