"""The steward: a small detached process per host and identity that signs out a shared session once
it has been unused for ``[partneros] session_linger`` seconds or reached ``session_max_age``.

Why a process: tasks are processes that come and go, and between two of them (a scheduler starting
mapped tasks one after another) no task is alive to sign a lingering session out later. The process
that signs in a new session starts the steward; a second steward for the same entry exits at once
(it cannot take the ``<entry>.steward`` lock), and the steward exits when nothing is left to look
after. It knows the base URL and the store entry, never the password: it only signs out with the
cookies in the store. If it is killed, the next task on the host signs out what is too old.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._session_store import (
    StoreEntry,
    StoreRefused,
    _open_private,
    steward_flow,
)

POLL = 1.0
"""Seconds between two rounds; a round is a lock attempt and a small file read."""


def start(entry: StoreEntry, settings: PartnerOSSettings, linger: float) -> None:
    """Start a steward for ``entry`` (detached: its own session, so it outlives the task)."""
    payload = {
        "directory": str(entry.directory),
        "entry": entry.name,
        "conn_id": settings.conn_id,
        "base_url": settings.base_url,
        "verify": settings.verify,
        "timeout": settings.timeout,
        "max_age": settings.session_max_age,
        "linger": linger,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_partneros._session_steward"],
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


def main() -> int:
    payload: dict[str, Any] = json.loads(sys.stdin.read())
    entry = StoreEntry(Path(payload["directory"]), str(payload["entry"]))
    import fcntl

    try:
        guard = _open_private(entry.directory / f"{entry.name}.steward", os.O_RDWR | os.O_CREAT)
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, StoreRefused, OSError):
        return 0  # another steward looks after this entry (or the store is unusable)

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

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
    # A hook given its settings directly: it only ever signs out with cookies from the store, so it
    # never needs the connection (nor the password).
    hook = PartnerOSHook(settings.conn_id)
    hook._settings = settings
    max_age, linger = settings.session_max_age, float(payload["linger"])
    while True:
        time.sleep(POLL)
        if not entry.directory.is_dir():
            return 0
        if not hook._drive_store(steward_flow(entry, max_age=max_age, linger=linger)):
            return 0


if __name__ == "__main__":
    sys.exit(main())
