"""Which URLs a webhook may be sent to (server-side request forgery).

A webhook makes the server send a request wherever an admin typed: without a check, an admin
account (or a stolen session) could make it reach what only the server can reach — a database
port on loopback, a cloud metadata service on 169.254.169.254, an internal admin page — and read
its answer back in the delivery log. So a URL is refused when its host is, or resolves to, a
loopback, private, link-local, multicast, reserved or unspecified address, both when the endpoint
is saved and again before each delivery (a name may be pointed elsewhere later). Redirects are
never followed. ``VIGOR_WEBHOOK_ALLOW_PRIVATE`` lifts the check for receivers on the vendor's own
network. What remains (a name re-pointed between the check and the connection) is narrow; an
egress firewall on the worker closes it (docs/webhooks.md).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from server.domain.errors import InvalidInputError
from server.domain.vocabulary import is_web_url

Resolver = Callable[[str], list[str]]
"""A host name → the addresses it resolves to (raises ``OSError`` when it does not)."""


def resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to (the system's resolver)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def refusal(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> str | None:
    """Why a webhook may not be sent to ``url``, or None when it may.

    Checks the form (an absolute http(s) URL with a host, no user or password in it) and, unless
    ``allow_private``, that every address the host resolves to is public.
    """
    if not is_web_url(url):
        return "must be an absolute http:// or https:// URL"
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (the signature authenticates Vigor)"
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "has an invalid port"
    if allow_private:
        return None
    host = parts.hostname or ""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolver(host)
        except (OSError, UnicodeError):
            return f"the host {host!r} does not resolve"
    private = [address for address in addresses if not _is_public(address)]
    if private or not addresses:
        return (
            f"the host {host!r} is a private, loopback or reserved address "
            f"({', '.join(private) or 'none'}); set VIGOR_WEBHOOK_ALLOW_PRIVATE=true to allow it"
        )
    return None


def check_url(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> str:
    """``url`` stripped, if a webhook may be sent to it.

    Raises:
        InvalidInputError: it may not (field ``url``); the message says why.
    """
    url = url.strip()
    problem = refusal(url, allow_private=allow_private, resolver=resolver)
    if problem is not None:
        raise InvalidInputError("url", problem)
    return url
