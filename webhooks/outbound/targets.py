"""Where outbound webhooks may go: public http(s) addresses only (no server-side request forgery).

A partner's API key or a staff account is all it takes to register an endpoint, and the
worker's answer (status code, response excerpt) is shown back to them; without this, a URL
like `http://127.0.0.1:6379/` or `http://169.254.169.254/latest/meta-data/` turns the workers
into a port scanner and a metadata-credential reader inside our network.

Refused: loopback, private (RFC 1918, unique-local fc00::/7), link-local (169.254/16 with the
cloud metadata address, fe80::/10), multicast, unspecified, every other non-global range
(CGNAT 100.64/10, documentation, reserved), and the same addresses embedded in IPv6
(IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16); schemes other than http(s).

The check runs twice. At registration (API and admin, through the model field's validator) a
literal address or a name resolving to a refused address is a 400 naming `url`; a name that
does not resolve yet is accepted. At delivery the connection itself resolves the name, checks
every address it got and connects to one of those checked addresses — never resolving again —
so a name re-pointed at 127.0.0.1 after registration (DNS rebinding) is refused too.

`OUTBOUND_WEBHOOK_ALLOW_LOOPBACK` (off by default; on in the embedded demo and the tests) lets
loopback through, for a receiver on the developer's own machine.
"""

import ipaddress
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

SCHEMES = ("http", "https")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL or an address it resolves to is not one webhooks may be delivered to."""


def refusal(address: Address) -> str | None:
    """Why webhooks may not go to this address (the class it belongs to), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal(embedded)
        return f"{reason} ({embedded}, embedded in IPv6)" if reason else None
    if address.is_loopback:
        return None if settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK else "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address (this includes cloud metadata services)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved, non-public address"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address the name resolves to (socket.gaierror when it resolves to none)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
    )


def checked_addresses(host: str, port: int) -> list[Address]:
    """The host's addresses, all of them allowed, or UnsafeTarget naming the first refused."""
    literal = _literal(host)
    addresses = [literal] if literal is not None else resolve(host, port)
    for address in addresses:
        reason = refusal(address)
        if reason:
            shown = host if literal is not None else f"{host} resolves to {address}, which"
            raise UnsafeTarget(f"{shown} is {reason}; webhooks go to public addresses only.")
    return addresses


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def validate_webhook_url(url: str) -> None:
    """Django validator of endpoint URLs: http(s), and no refused address literally or once
    resolved. A name that does not resolve yet passes; delivery checks it again."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ValidationError("Use an http:// or https:// URL.", code="scheme")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValidationError("The URL's port is not a number from 0 to 65535.") from None
    if not host:
        raise ValidationError("The URL names no host.", code="host")
    try:
        checked_addresses(host, port or (443 if parts.scheme.lower() == "https" else 80))
    except UnsafeTarget as refused:
        raise ValidationError(str(refused), code="unsafe_target") from None
    except (OSError, UnicodeError):
        return


# What the mixin below extends, for the type checker; at run time it stays a plain mixin.
if TYPE_CHECKING:
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class _CheckedConnectionMixin(_ConnectionBase):
    """Resolve, check, and connect to a checked address: one resolution per connection."""

    def _new_conn(self) -> socket.socket:
        try:
            addresses = checked_addresses(self._dns_host, self.port)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        last_error: Exception | None = None
        for address in addresses:
            try:
                return create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as error:
                last_error = ConnectTimeoutError(self, f"Connection to {address} timed out.")
                last_error.__cause__ = error
            except OSError as error:
                last_error = NewConnectionError(self, f"Failed to connect to {address}: {error}")
                last_error.__cause__ = error
        assert last_error is not None  # checked_addresses returns at least one address
        raise last_error


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through the address check. TLS still
    verifies the certificate against the URL's host name, not the address."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPConnectionPool,
            "https": _CheckedHTTPSConnectionPool,
        }


def checked_session() -> requests.Session:
    """A session whose connections all go through the address check. Proxies from the
    environment are not used: a proxy would connect to the target unchecked."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", CheckedAdapter())
    session.mount("https://", CheckedAdapter())
    return session
