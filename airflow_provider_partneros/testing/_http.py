"""The HTTP plumbing: a threaded server on loopback that reads requests, writes answers (streamed or
not) and plays faults at the socket level (drops, TCP resets, drips, short bodies).

What an answer *says* is decided elsewhere: every request goes to one ``serve_one(handler, body)``
callable (the stand-in's). Standard library only.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_provider_partneros.testing._wire import JSON, Response, json_response, logger
from airflow_provider_partneros.testing.faults import Fault

MAX_REQUEST_BODY = 32 * 1024 * 1024

ServeOne = Callable[["Handler", bytes], None]


_FAULT_BODIES = {
    "malformed_json": b'{"id": "conn_salesforce_demo", "status": "act',
    "reset": b'{"id": "conn_salesforce_demo", "platform": "salesforce", "sta',
    "short_body": b'{"id": "conn_salesforce_demo", "status": "active"',
    "drip": b" " * 65534 + b"{}",
}
"""What a fault of these kinds sends when it has no ``body`` of its own."""


class _BadRequest(Exception):
    pass


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that binds without DNS, tracks connections and can reset them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, serve_one: ServeOne) -> None:
        self.address_family = family
        self.serve_one = serve_one
        self.conns: set[socket.socket] = set()
        self.aborted: set[int] = set()
        self.conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take seconds.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-answer are routine here (faults, timeouts); stay quiet.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            abort = id(request) in self.aborted
            self.aborted.discard(id(request))
        if abort:
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset".
            with contextlib.suppress(OSError):
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_request(request)
            return
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                # The plain-socket method: works on TLS sockets without tearing down their state.
                socket.socket.shutdown(conn, socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "PartnerOS-StandIn/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    """Headers and body go out in separate writes; with Nagle on, each answer waits ~40 ms for an ACK."""
    timeout = 120.0
    """Idle keep-alive connections are closed after this; also bounds a stuck client."""
    _tls_failed = False

    def setup(self) -> None:
        with self.server.conns_lock:
            self.server.conns.add(self.request)
        if isinstance(self.request, ssl.SSLSocket):
            # The handshake runs here, in the connection's thread, not in the accept loop.
            self.request.settimeout(10.0)
            try:
                self.request.do_handshake()
            except (OSError, ValueError):
                self._tls_failed = True
        super().setup()

    def handle(self) -> None:
        if self._tls_failed:
            self.close_connection = True
            return
        super().handle()

    def finish(self) -> None:
        with self.server.conns_lock:
            self.server.conns.discard(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes request lines to stderr."""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._write(json_response(400, {"error": str(exc)}), close=True)
            return
        self.server.serve_one(self, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("Malformed chunked request body.") from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_REQUEST_BODY:
                    raise _BadRequest("Request body too large.")
                out += self.rfile.read(size)
                self.rfile.readline(8)
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _BadRequest("Invalid Content-Length.") from None
        if length < 0 or length > MAX_REQUEST_BODY:
            raise _BadRequest("Invalid Content-Length.")
        return self.rfile.read(length)

    def _head(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _write(self, resp: Response, *, close: bool = False, stop: threading.Event | None = None) -> None:
        headers = list(resp.headers)
        if resp.content_type:
            headers.insert(0, ("Content-Type", resp.content_type))
        body = resp.body
        if isinstance(body, bytes):
            headers.append(("Content-Length", str(len(body))))
        else:
            headers.append(("Transfer-Encoding", "chunked"))
        if close:
            headers.append(("Connection", "close"))
        self._head(resp.status, headers)
        if self.command == "HEAD":
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        for chunk in body:
            if stop is not None and stop.is_set():
                self.close_connection = True
                return
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _abort_connection(self) -> None:
        with self.server.conns_lock:
            self.server.aborted.add(id(self.request))
        self.close_connection = True

    def play_fault(self, f: Fault, stop: threading.Event) -> int | None:
        """Misbehave at the socket level as ``f`` says; returns the status sent (None if no status line
        was). ``stop`` set (the server stopping) ends a drip early."""
        if f.kind == "drop":
            self.close_connection = True
            return None
        extra = list((f.headers or {}).items())
        if f.kind == "status":
            data, ctype = f.encoded_body()
            status = f.status or 500
            self._write(Response(status, data, ctype, extra))
            return status
        if f.kind == "redirect":
            status = f.status if f.status is not None and 300 <= f.status < 400 else 302
            self._write(Response(status, b"", None, [("Location", f.location or "/"), *extra]))
            return status
        status = f.status or 200
        data, _ = f.encoded_body(_FAULT_BODIES[f.kind])
        ctype = f.content_type or JSON
        if f.kind == "malformed_json":
            self._write(Response(status, data, ctype, extra))
            return status
        headers = [("Content-Type", ctype), *extra]
        # reset and short_body announce more than they send; drip sends it all, one byte at a time
        missing = {"reset": 4096, "short_body": 1024}.get(f.kind, 0)
        headers.append(("Content-Length", str(len(data) + missing)))
        if f.kind == "short_body":
            headers.append(("Connection", "close"))
        self._head(status, headers)
        if f.kind == "drip":
            for i in range(len(data)):
                if stop.wait(f.seconds):
                    self.close_connection = True
                    break
                self.wfile.write(data[i : i + 1])
            return status
        self.wfile.write(data)
        if f.kind == "reset":
            self._abort_connection()
        else:
            self.close_connection = True
        return status


class Listener:
    """A bound server socket and the daemon thread accepting on it."""

    def __init__(
        self, host: str, port: int, tls: ssl.SSLContext | None, serve_one: ServeOne, stop: threading.Event
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        httpd = _HTTPServer((host, port), family, serve_one)
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._stop = stop
        self._wake = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve, name=f"partneros-standin-{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        """Accept loop; a byte on ``wake`` ends it at once (serve_forever would poll every 0.5 s)."""
        httpd, wake = self._httpd, self._wake[0]
        with selectors.DefaultSelector() as sel:
            sel.register(httpd, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select():
                    if key.fileobj is wake:
                        return
                    httpd._handle_request_noblock()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop accepting, cut open connections (ends drips and keep-alives) and free the port.

        The caller sets ``stop`` first, so answers in flight (delays, paced streams) end too.
        """
        with contextlib.suppress(OSError):
            self._wake[1].send(b"x")
        if self._thread.is_alive():
            self._thread.join(5)
        self._httpd.close_all()
        self._httpd.server_close()
        for s in self._wake:
            s.close()
