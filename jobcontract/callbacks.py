"""Which callback URLs the fleet may POST to: checked by the API when a job is accepted and by
the webhook worker again before each delivery (DNS may have changed in between)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class CallbackRefused(ValueError):
    pass


def check_callback_url(url: str, allow_private: bool) -> None:
    """http(s) only, and (unless allowed) no loopback, private, link-local or reserved address
    behind the host name: the service must not become a way into its own network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url must be an http or https URL with a host")
    if allow_private:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackRefused(f"callback_url host {parts.hostname!r} does not resolve: {exc}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise CallbackRefused(f"callback_url resolves to a non-public address ({ip}); "
                                  "set SPEECHFLEET_WEBHOOK_ALLOW_PRIVATE=true to allow it")
