"""The steward: a small detached process per store entry that signs out a shared session once it has
been unused for ``[partneros] session_linger`` seconds or reached ``session_max_age``.

Why a process: tasks are processes that come and go, and between two of them (a scheduler starting
mapped tasks one after another) no task is alive to sign a lingering session out later. The process
that signs in a new session starts the steward; a second steward for the same entry exits at once
(:meth:`StoreEntry.steward_guard`), and the steward exits when nothing is left to look after. It gets
the entry's ticket and the base URL through a pipe, never the password: it only signs out with the
cookies in the store. If it is killed, the next task signs out what is too old.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._sessions.config import reopen_entry
from airflow_provider_partneros._sessions.flows import LockEntry, SignOut, StoreIO, drive, steward_flow
from airflow_provider_partneros._sessions.store import StoreEntry
from airflow_provider_partneros._sessions.sync_http import sign_out_once

POLL = 1.0
"""Seconds between two rounds; a round is a lock attempt and a small read."""


def start(entry: StoreEntry, settings: PartnerOSSettings, linger: float) -> None:
    """Start a steward for ``entry`` (detached: its own session, so it outlives the task)."""
    payload = {
        "ticket": entry.ticket(),
        "conn_id": settings.conn_id,
        "base_url": settings.base_url,
        "verify": settings.verify,
        "timeout": settings.timeout,
        "max_age": settings.session_max_age,
        "linger": linger,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_partneros._sessions.steward"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        # Imported as a library only: a task process's environment deliberately holds no usable
        # metadata-DB URL, and the steward needs nothing of Airflow's settings, DB or logging.
        env={**os.environ, "_AIRFLOW__AS_LIBRARY": "1"},
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(payload).encode())
    process.stdin.close()


def perform(action: object, settings: PartnerOSSettings) -> Any:
    """Perform one action of :func:`steward_flow` in this process (it only ever signs out)."""
    if isinstance(action, StoreIO):
        return action.function(*action.args)
    if isinstance(action, LockEntry):
        return action.entry.lock(action.deadline)
    if isinstance(action, SignOut):
        return sign_out_once(settings, action.cookies, None)
    raise TypeError(f"the steward never performs {action!r}")  # pragma: no cover - not in steward_flow


def main() -> int:
    payload: dict[str, Any] = json.loads(sys.stdin.read())
    try:
        entry = reopen_entry(payload["ticket"])
        guard = entry.steward_guard()
    except Exception:
        return 0  # the store is unusable from here: the next task cleans up
    if guard is None:
        return 0  # another steward looks after this entry
    settings = PartnerOSSettings(
        conn_id=str(payload["conn_id"]),
        base_url=str(payload["base_url"]),
        email=None,
        password=None,
        verify=payload["verify"],
        timeout=float(payload["timeout"]),
        max_retries=0,
        session_max_age=float(payload["max_age"]),
    )
    max_age, linger = settings.session_max_age, float(payload["linger"])
    try:
        while True:
            time.sleep(POLL)
            if not entry.alive():
                return 0
            try:
                busy = drive(
                    steward_flow(entry, max_age=max_age, linger=linger), lambda a: perform(a, settings)
                )
            except Exception:  # noqa: S112 - a store hiccup (Redis restarting): try again next round
                continue
            if not busy:
                return 0
    finally:
        guard.release()


if __name__ == "__main__":
    sys.exit(main())
