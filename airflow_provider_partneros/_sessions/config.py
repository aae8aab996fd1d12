"""The ``[partneros]`` Airflow config options of the session subsystem, read on every use.

``session_dir``
    the host's file store (default: a private directory per user, see ``default_directory``).
``session_linger``
    seconds an unused shared session waits for the next task before it is signed out.
``session_store_conn_id``
    an Airflow connection of type ``redis``: one session per deployment (the Redis store, extra
    ``[redis]``); empty, the default, keeps the host's file store.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_SECTION = "partneros"
DIR_OPTION = "session_dir"
LINGER_OPTION = "session_linger"
STORE_CONN_OPTION = "session_store_conn_id"
DEFAULT_LINGER = 60.0
"""Seconds an unused shared session is kept for the next task before it is signed out."""


def config_value(option: str) -> str:
    """``[partneros] <option>``: its environment variable first (read on every call, so tests and
    deployments can set it per process), then Airflow's configuration."""
    value = os.environ.get(f"AIRFLOW__{CONFIG_SECTION.upper()}__{option.upper()}")
    if value is None:
        try:
            from airflow.configuration import conf

            value = conf.get(CONFIG_SECTION, option, fallback=None)
        except Exception:  # no Airflow config to read (e.g. outside a deployment): use the default
            value = None
    return (value or "").strip()


def configured_directory() -> Path:
    """``[partneros] session_dir`` (``AIRFLOW__PARTNEROS__SESSION_DIR``), or the per-user default."""
    from airflow_provider_partneros._sessions.file_store import default_directory

    value = config_value(DIR_OPTION)
    return Path(os.path.expanduser(value)) if value else default_directory()


def configured_linger() -> float:
    """``[partneros] session_linger``: seconds an unused session waits for the next task (0: the last
    task out signs it out at once). Unreadable values mean the default."""
    value = config_value(LINGER_OPTION)
    try:
        linger = float(value) if value else DEFAULT_LINGER
    except ValueError:
        return DEFAULT_LINGER
    return linger if 0 <= linger < float("inf") else DEFAULT_LINGER


def configured_store_conn_id() -> str | None:
    """``[partneros] session_store_conn_id``: the Redis connection of the deployment store, or None."""
    return config_value(STORE_CONN_OPTION) or None


__all__ = [
    "DEFAULT_LINGER",
    "config_value",
    "configured_directory",
    "configured_linger",
    "configured_store_conn_id",
]
