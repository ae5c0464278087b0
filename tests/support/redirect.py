"""An aiohttp session that sends named production hosts to a local server and refuses the rest.

ccxt keeps its production URLs (``https://api.binance.com/...``); only name resolution changes:
:class:`LocalResolver` answers ``127.0.0.1:<ephemeral port>`` for the mapped hosts (aiohttp
connects to the port the resolver returns, so ``:443`` in the URL reaches the ephemeral port)
and raises for every other name. :class:`LocalOnlyConnector` also refuses IP-literal URLs,
which aiohttp would otherwise connect to without asking the resolver. TLS is verified against
the test CA only, so even a mis-resolved real host could not complete a handshake.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class HostRefused(OSError):
    """A host outside the redirect map was asked for."""


class LocalResolver(AbstractResolver):
    def __init__(self, host_map: dict[str, int]) -> None:
        self.host_map = {h.lower(): p for h, p in host_map.items()}
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        local_port = self.host_map.get(host.lower().rstrip("."))
        if local_port is None:
            raise HostRefused(f"host {host!r} is not reachable from tests (only {sorted(self.host_map)})")
        return [{"hostname": host, "host": "127.0.0.1", "port": local_port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


class LocalOnlyConnector(aiohttp.TCPConnector):
    """Refuses IP-literal hosts too (aiohttp bypasses the resolver for them)."""

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        resolver = self._resolver  # type: ignore[attr-defined]
        assert isinstance(resolver, LocalResolver)
        if host.lower().rstrip(".") not in resolver.host_map:
            resolver.asked.append(host)
            raise HostRefused(f"host {host!r} is not reachable from tests")
        return await super()._resolve_host(host, port, traces=traces)


def redirect_session(host_map: dict[str, int], ssl_context: ssl.SSLContext) -> aiohttp.ClientSession:
    """A session mapping ``host -> 127.0.0.1:port`` for ``host_map`` and refusing all other hosts.

    Must be created inside a running event loop; the caller closes it (``await s.close()``).
    """
    resolver = LocalResolver(host_map)
    connector = LocalOnlyConnector(resolver=resolver, ssl=ssl_context, use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def sim_adapter(venue: str, credentials: Any, host_map: dict[str, int], ssl_context: ssl.SSLContext,
                **kw: Any) -> Any:
    """A live ccxt adapter of ``venue`` over its OWN redirect session (``host_map``), which it closes when it
    is closed: for the factories that hand an adapter over (the runner's adapter-factory hook) and keep no
    handle on the session. ``CcxtLiveAdapter.close`` leaves a session passed in open (its owner closes it),
    so without this each such session was left to the garbage collector: "Unclosed client session"."""
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter

    class _OwnSession(CcxtLiveAdapter):
        async def close(self) -> None:
            try:
                await super().close()
            finally:
                await session.close()

    session = redirect_session(host_map, ssl_context)
    return _OwnSession(venue, credentials, session=session, **kw)
