"""No network during the test suite: sockets may only reach loopback (127.0.0.0/8, ::1) or AF_UNIX.

Loaded from tests/conftest.py (`pytest_plugins`). For the whole session, `socket.socket.connect`,
`connect_ex`, `socket.create_connection` and `socket.getaddrinfo` refuse any other destination
*before* the real call, so no packet (not even a DNS query for a non-local name) leaves the machine.
A refused attempt raises `NetworkBlockedError` (an `OSError` with errno ENETUNREACH, which is what
code sees on a machine without a network) and is listed at the end of the run.

Subprocesses (the CLI run by `run_cli`, `assistant ui`, llama.cpp or chroma servers, Chromium) are not
covered: a monkeypatch lives in this process only. See SECURITY.md.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkBlockedError(OSError):
    """A test tried to reach a non-loopback address."""

    def __init__(self, address: object):
        super().__init__(errno.ENETUNREACH, f"network access blocked during tests: {address!r} is not loopback")
        self.address = address


#: Every refused destination, in order (shown in the terminal summary).
BLOCKED: list[str] = []

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_create_connection = socket.create_connection
_real_getaddrinfo = socket.getaddrinfo


def is_local_host(host: object) -> bool:
    """True for loopback IP literals and the usual names of localhost."""
    if host is None:
        return True  # getaddrinfo(None, port) means the local wildcard / loopback
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower().rstrip(".")
    if name in LOCAL_NAMES or name == "":
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _allowed(family: int, address: object) -> bool:
    if family == getattr(socket, "AF_UNIX", object()) or not isinstance(address, tuple):
        return True  # AF_UNIX paths (str/bytes) and other local families
    return is_local_host(address[0])


def _refuse(address: object) -> NetworkBlockedError:
    BLOCKED.append(repr(address))
    return NetworkBlockedError(address)


def guarded_connect(self: socket.socket, address):  # noqa: ANN001
    if not _allowed(self.family, address):
        raise _refuse(address)
    return _real_connect(self, address)


def guarded_connect_ex(self: socket.socket, address):  # noqa: ANN001
    if not _allowed(self.family, address):
        _refuse(address)
        return errno.ENETUNREACH
    return _real_connect_ex(self, address)


def guarded_create_connection(address, *args, **kwargs):  # noqa: ANN001
    if isinstance(address, tuple) and not is_local_host(address[0]):
        raise _refuse(address)
    return _real_create_connection(address, *args, **kwargs)


def guarded_getaddrinfo(host, *args, **kwargs):  # noqa: ANN001
    # IP literals resolve without a query (connect() is still checked); names other than
    # localhost would be a DNS query, i.e. a packet to the resolver.
    if not is_local_host(host):
        literal = host.decode() if isinstance(host, bytes) else host
        try:
            ipaddress.ip_address(str(literal).strip("[]").split("%", 1)[0])
        except ValueError:
            raise _refuse((host, *args[:1])) from None
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.create_connection = guarded_create_connection
    socket.getaddrinfo = guarded_getaddrinfo


def uninstall() -> None:
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.create_connection = _real_create_connection
    socket.getaddrinfo = _real_getaddrinfo


def installed() -> bool:
    return socket.socket.connect is guarded_connect and socket.getaddrinfo is guarded_getaddrinfo


@pytest.fixture(scope="session", autouse=True)
def _no_network():
    """Active for every test of the session."""
    install()
    try:
        yield
    finally:
        uninstall()


def pytest_terminal_summary(terminalreporter) -> None:
    if BLOCKED:
        terminalreporter.section("network access blocked (tests/_netguard.py)")
        for address in dict.fromkeys(BLOCKED):
            terminalreporter.line(address)
