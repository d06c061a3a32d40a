"""TLS for ``--certfile`` and ``--keyfile``: load the certificate once, handshake per connection.

The context is made where the options are read (the master, before it forks), so a missing
file, a file that is not PEM, an encrypted key or a key that does not match the certificate
is one line at start-up, not a failure in every worker. OpenSSL's own messages ("[SSL]
PEM lib (_ssl.c:3900)") say none of that, so each is explained here.

Each connection's handshake runs in its own greenlet, within the header timeout, with
``do_handshake_on_connect=False``: gevent's ``StreamServer(ssl_context=...)`` would handshake
in its accept path and log every failed handshake (a port scanner, an expired client) as a
traceback. Here a failed handshake is one debug line. A client that sends plain HTTP to the
TLS port (``http://`` instead of ``https://``) is recognised by its first byte (a TLS
connection starts with a handshake record, 0x16; an HTTP request with a letter) and answered
with a plain-text 400 that says so, as nginx does, instead of a close the user cannot read.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl

import gevent.ssl

server_logger = logging.getLogger("microback.server")

#: The first byte of every TLS connection: a record of type "handshake" (RFC 8446, 5.1).
_HANDSHAKE_RECORD = 0x16


class TLSConfigError(ValueError):
    """The certificate or key cannot be used; ``str()`` is one sentence that says why."""


class PlainHTTP(Exception):
    """The client spoke plain HTTP on the TLS port."""


def make_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """Load *certfile* (PEM, the server's certificate then any intermediates) and *keyfile*.

    Without *keyfile*, the private key must be in *certfile*. The context speaks TLS 1.2 and
    1.3 and offers ``http/1.1`` by ALPN. Raises :class:`TLSConfigError`.
    """
    cert_pem = _read("certificate", certfile)
    key_pem = _read("key", keyfile) if keyfile is not None else cert_pem
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise TLSConfigError(f"the TLS certificate {certfile!r} is not a PEM certificate")
    key_name = keyfile if keyfile is not None else certfile
    if b"PRIVATE KEY-----" not in key_pem:
        hint = "" if keyfile is not None else "; give the key with --keyfile"
        raise TLSConfigError(f"no PEM private key in {key_name!r}{hint}")

    # gevent's SSLContext, patched or not: its sockets wait cooperatively.
    context = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        # Without a password callback OpenSSL would prompt on the terminal for an encrypted
        # key, and a service would hang there.
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except _EncryptedKey:
        raise TLSConfigError(
            f"the TLS key {key_name!r} is encrypted; give an unencrypted key "
            "(openssl pkey -in KEY -out KEY.plain), readable only by the server's user"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            reason = f"the key {key_name!r} does not belong to the certificate {certfile!r}"
        else:
            reason = f"OpenSSL cannot load {certfile!r} and {key_name!r}: {exc.reason or exc}"
        raise TLSConfigError(reason) from None
    return context


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey


def _read(what: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise TLSConfigError(f"cannot read the TLS {what} {path!r}: no such file") from None
    except IsADirectoryError:
        raise TLSConfigError(f"cannot read the TLS {what} {path!r}: it is a directory") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TLSConfigError(f"cannot read the TLS {what} {path!r}: {reason.lower()}") from None


def accept_tls(
    sock: socket.socket, context: ssl.SSLContext, client: str, timeout: float
) -> socket.socket | None:
    """Handshake on a newly accepted connection; return the TLS socket, or None if it failed.

    Raises :class:`PlainHTTP` when the client sent plain HTTP instead: the caller answers it
    on *sock*. The whole exchange is bounded by *timeout* seconds of silence.
    """
    sock.settimeout(timeout)
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        return None  # reset or silent: nothing to answer
    if not first:
        return None
    if first[0] != _HANDSHAKE_RECORD:
        raise PlainHTTP
    try:
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        tls.do_handshake()
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        server_logger.debug("TLS handshake with %s failed: %s", client or "-", exc)
        _close(sock)
        return None
    return tls


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
