"""Who is on the other end of a request: the peer's address, or a trusted proxy's word for it.

Rate limits are keyed by this address, so it must not be something a client can choose. A
``X-Forwarded-For`` header is believed only when the connection comes from a proxy the agency listed in
``DFR_TRUSTED_PROXIES`` (none by default); then the address is the right-most entry that is not itself a
trusted proxy (entries further left were written by the client and prove nothing). uvicorn's own
forwarded-header handling, which trusts any loopback peer, is switched off (`dfr.api.live_routes.LiveServer`),
because on a shared machine every local process is a loopback peer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import HTTPConnection

__all__ = ["client_address", "client_scheme", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks (``10.0.0.5``, ``10.0.0.0/24``); raises ValueError naming a bad one."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(out)


@lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(entries)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _via_proxy(conn: HTTPConnection) -> tuple[str, tuple[Network, ...]] | None:
    """(peer, proxy networks) if the peer is a configured proxy, else None."""
    peer = conn.client.host if conn.client else "unknown"
    settings = getattr(conn.app.state, "settings", None)
    proxies = tuple(getattr(settings, "trusted_proxies", ()) or ())
    if not proxies:
        return None
    networks = _networks(proxies)
    return (peer, networks) if _trusted(peer, networks) else None


def client_scheme(conn: HTTPConnection) -> str:
    """``https`` if the client's connection is TLS: the request's own scheme, or a trusted proxy's
    ``X-Forwarded-Proto`` (a TLS proxy in front of dfr: the session cookie must then be Secure)."""
    if _via_proxy(conn) is not None:
        forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return conn.url.scheme


def client_address(conn: HTTPConnection) -> str:
    """The address to hold this request's caller to (see the module docstring)."""
    peer = conn.client.host if conn.client else "unknown"
    proxied = _via_proxy(conn)
    if proxied is None:
        return peer
    networks = proxied[1]
    hops = [h.strip() for h in ",".join(conn.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy's side: hold the proxy itself to the limit
    return peer
