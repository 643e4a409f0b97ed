"""The fault proxy itself, in front of a loopback echo server: it delays, stalls and drops as told."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from testkit.fault_proxy import ProxyThread


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture()
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    p = ProxyThread("127.0.0.1", server.server_address[1])
    yield p
    p.close()
    server.shutdown()
    server.server_close()


def connect(p: ProxyThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", p.proxy.port), timeout=3)


def round_trip(sock: socket.socket, data: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the proxy")
        got += chunk
    assert got == data
    return time.monotonic() - started


def test_clean_link_forwards_both_ways_quickly(proxy) -> None:
    with connect(proxy) as s:
        assert round_trip(s, b"x" * 200_000) < 1.0


def test_delay_applies_each_way(proxy) -> None:
    proxy.set_delay(0.15)
    with connect(proxy) as s:
        assert round_trip(s) >= 0.3
        proxy.heal()
        assert round_trip(s) < 0.15


def test_stall_holds_bytes_until_healed(proxy) -> None:
    with connect(proxy) as s:
        round_trip(s)
        proxy.set_stalled(True)
        s.sendall(b"held")
        s.settimeout(0.4)
        with pytest.raises(TimeoutError):
            s.recv(16)
        proxy.heal()
        s.settimeout(3)
        assert s.recv(16) == b"held"


def test_drop_resets_connections_and_refuses_for_a_while(proxy) -> None:
    with connect(proxy) as s:
        round_trip(s)
        proxy.drop_all(refuse_s=0.5)
        with pytest.raises((ConnectionError, OSError)):
            round_trip(s)
    with connect(proxy) as s, pytest.raises((ConnectionError, OSError)):  # accepted, then reset at once
        round_trip(s)
    time.sleep(0.6)
    with connect(proxy) as s:
        assert round_trip(s) < 1.0


def test_negative_delay_is_refused(proxy) -> None:
    with pytest.raises(ValueError, match="proxy delay"):
        proxy.set_delay(-1)
