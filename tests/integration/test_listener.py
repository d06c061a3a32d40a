"""The listening socket: TCP_NODELAY on every connection, and bind errors that say what to do."""

from __future__ import annotations

import socket

import pytest

from microback.server.listener import ListenError, bind_listener


def test_accepted_connections_have_tcp_nodelay() -> None:
    # Without it, each keep-alive request after the first stalls ~40 ms (Nagle + delayed ACK):
    # pywsgi sends the headers and the body in two writes.
    with bind_listener("127.0.0.1", 0) as listener:
        port = listener.getsockname()[1]
        listener.setblocking(True)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_port_in_use_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(ListenError) as error:
            bind_listener("127.0.0.1", port)

    assert str(error.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"


def test_ipv6_address_is_written_in_brackets() -> None:
    try:
        listener = bind_listener("::1", 0)
    except ListenError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with listener:
        port = listener.getsockname()[1]

        with pytest.raises(ListenError) as error:
            bind_listener("::1", port)

    assert str(error.value) == f"cannot listen on [::1]:{port}: address already in use"
