"""A per-host egress address on one machine: a TCP forwarder that reaches the stand-in from 127.0.0.N.

On a real scale-out each worker host reaches PartnerOS from its own IP, and the sign-in rate limit
(3 per 10 s) is per client IP. On one machine every process would come from 127.0.0.1, so one
"host" could eat another's sign-in budget and the server could not tell the hosts apart. Each host
of the test environment therefore talks to its own forwarder (its connection's base URL is the
forwarder's port), and the forwarder opens the upstream connection from that host's own loopback
address (all of 127.0.0.0/8 is local on Linux). The stand-in then sees, rate-limits and records
(``RequestRecord.client``) every host separately, exactly as it would see hosts behind different
egress IPs. Plain bytes are copied both ways; nothing is parsed or logged.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class EgressForwarder:
    """Listen on 127.0.0.1:<free port>; forward each connection to ``target`` from ``source_ip``."""

    def __init__(self, target: tuple[str, int], source_ip: str) -> None:
        self.target = target
        self.source_ip = source_ip
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stopped = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name=f"egress-{source_ip}", daemon=True)

    def start(self) -> EgressForwarder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10, source_address=(self.source_ip, 0))
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update((client, upstream))
        pair = _Pair(client, upstream, self)
        threading.Thread(target=pair.pump, args=(upstream, client), daemon=True).start()
        pair.pump(client, upstream)

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.difference_update(socks)


class _Pair:
    """One forwarded connection: two pumps; the second to finish closes both sockets."""

    def __init__(self, a: socket.socket, b: socket.socket, owner: EgressForwarder) -> None:
        self.a, self.b, self.owner = a, b, owner
        self._done = 0
        self._lock = threading.Lock()

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)  # half-close: the other direction may still carry the answer
        with self._lock:
            self._done += 1
            last = self._done == 2
        if last:
            for sock in (self.a, self.b):
                with contextlib.suppress(OSError):
                    sock.close()
            self.owner._forget(self.a, self.b)
