"""The long-lived runner: many hedges in one asyncio process, journal, recovery, control API.

See ``process.py`` (entry point), ``supervisor.py``, ``hedge.py``, ``journal.py``,
``reconcile.py``, ``control_api.py`` and ``client.py``.
"""
