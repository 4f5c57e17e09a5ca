"""Which callback URLs the fleet may POST to: checked by the API when a job is accepted and by
the webhook worker again at delivery, against the very address it then connects to (so a
name that resolves elsewhere the second time, DNS rebinding, cannot reach inside).

Refused unless ``allow_private``: every address that is not global, and every IPv6 form that
carries an IPv4 address which is not global (IPv4-mapped and -compatible, NAT64's well-known
and local-use prefixes, 6to4, Teredo), site-local and unique-local IPv6.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")


class CallbackRefused(ValueError):
    pass


@dataclass(frozen=True)
class CallbackTarget:
    url: str
    host: str  # the name, for the Host header and TLS
    port: int
    address: IPAddress  # where to connect: checked, and the only place the delivery goes


def parse_callback_url(url: str) -> tuple[SplitResult, int]:
    """The URL's parts and port; CallbackRefused for anything that is not a well-formed http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url must be an http or https URL with a host")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise CallbackRefused("callback_url must not contain spaces or control characters")
    return parts, port or (443 if parts.scheme == "https" else 80)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it has one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if any(address in prefix for prefix in NAT64_PREFIXES) or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why the fleet must not connect to ``address``; None if it may."""
    if not address.is_global or address.is_multicast:
        return "a non-public address"
    if isinstance(address, ipaddress.IPv6Address):
        if address in SITE_LOCAL:
            return "a site-local address"
        inner = embedded_ipv4(address)
        if inner is not None and (not inner.is_global or inner.is_multicast):
            return f"an IPv6 form of the non-public address {inner}"
    return None


def resolve_callback(url: str, allow_private: bool) -> CallbackTarget:
    """Resolve the URL's host once and check every address it has; the target to connect to."""
    parts, port = parse_callback_url(url)
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackRefused(f"callback_url host {host!r} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise CallbackRefused(f"callback_url host {host!r} has no address")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise CallbackRefused(f"callback_url resolves to {why} ({address}); "
                                      "set SPEECHFLEET_WEBHOOK_ALLOW_PRIVATE=true to allow it")
    return CallbackTarget(url, host, port, addresses[0])


def check_callback_url(url: str, allow_private: bool) -> None:
    resolve_callback(url, allow_private)


def redacted_url(url: str) -> str:
    """The URL without the credentials in its user-info part, for anyone who reads the job."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable)"
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{netloc}").geturl()
