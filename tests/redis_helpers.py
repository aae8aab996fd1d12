"""A real ``redis-server`` of a test's own, and the faults a deployment's Redis can have.

Debian's ``redis-server`` (``make system-deps`` installs it for tests marked ``redis``), on a free
loopback port, with a password, no persistence (``--save "" --appendonly no``: a restart loses every
key, as a Redis without a volume does) and a directory of its own; stopped by its pid, nothing broader.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployment_harness import free_port

if TYPE_CHECKING:
    import redis

    from airflow_provider_partneros._sessions.redis_store import RedisConnection

REDIS_PASSWORD = "redis-test-pw-6f1c2a"


class RedisServer:
    """One ``redis-server`` process; :meth:`kill` and :meth:`start` again keep the port."""

    def __init__(self, root: Path, password: str = REDIS_PASSWORD) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run `make system-deps` (Debian package redis-server)")
        self.binary = binary
        self.root = root
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--requirepass", self.password,
            "--save", "",
            "--appendonly", "no",
            "--rdbcompression", "no",  # DUMP shows every byte as stored (no LZF), for the secrets scan
            "--dir", str(self.root),
            "--logfile", str(self.root / "redis.log"),
            "--enable-debug-command", "local",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                if self.client().ping():
                    return
            if self.proc.poll() is not None or time.monotonic() > end:
                log = (self.root / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: every key is lost (no persistence), every client's connection breaks."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- faults -------------------------------------------------------------------------------------

    def flushall(self) -> None:
        self.client().flushall()

    def sleep(self, seconds: float) -> subprocess.Popen[bytes]:
        """Make the server answer nobody for ``seconds`` (``DEBUG SLEEP`` from another client); returns
        that client, which exits when the server wakes up."""
        proc = subprocess.Popen(
            [self._cli(), "-p", str(self.port), "--no-auth-warning", "-a", self.password, "DEBUG", "SLEEP",
             str(seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.1)  # let it reach the server before the caller goes on
        return proc

    def pause(self, seconds: float) -> None:
        """``CLIENT PAUSE``: every client's commands wait ``seconds`` (the server stays reachable)."""
        self.client().execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")

    # --- clients ------------------------------------------------------------------------------------

    def connection(self, password: str | None = None) -> RedisConnection:
        """The store's view of this server (``password`` to give a wrong one)."""
        from airflow_provider_partneros._sessions.redis_store import RedisConnection

        return RedisConnection(host="127.0.0.1", port=self.port, password=password or self.password)

    def airflow_connection_json(self, password: str | None = None, db: int = 0) -> str:
        """An ``AIRFLOW_CONN_<ID>`` value (JSON form) for a connection of type ``redis``."""
        import json

        return json.dumps(
            {
                "conn_type": "redis",
                "host": "127.0.0.1",
                "port": self.port,
                "password": password or self.password,
                "extra": {"db": db},
            }
        )

    def client(self, **kwargs: Any) -> redis.Redis:
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5, **kwargs
        )

    def dump(self) -> dict[bytes, bytes]:
        """Every key (SCAN) with every byte it holds (DUMP: any type, value and members alike)."""
        client = self.client()
        return {key: client.dump(key) or b"" for key in client.scan_iter(count=1000)}  # type: ignore[misc]

    def _cli(self) -> str:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found: run `make system-deps` (Debian package redis-server)")
        return cli


__all__ = ["REDIS_PASSWORD", "RedisServer"]
