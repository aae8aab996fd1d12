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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_partneros.exceptions import PartnerOSConfigError

if TYPE_CHECKING:
    from airflow_provider_partneros._connection.settings import PartnerOSSettings
    from airflow_provider_partneros._sessions.store import StoreEntry

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
            from airflow_provider_partneros.version_compat import conf

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


# --- opening the stores -----------------------------------------------------------------------------------

DeploymentStoreConnection = tuple[Any, Mapping[str, Any]]
"""The Airflow connection named by ``session_store_conn_id`` and its extra, as the transport read it
(the sync transport with ``get_connection``, the async one with ``aget_connection``)."""


def store_connection_missing(conn_id: str, err: Exception) -> PartnerOSConfigError:
    return PartnerOSConfigError(
        f"[partneros] {STORE_CONN_OPTION} names the Airflow connection {conn_id!r}, which could not be read "
        f"({type(err).__name__}). Create a connection of type redis with that id, or clear the option to "
        "use each host's own session store."
    )


def deployment_store_connection() -> DeploymentStoreConnection | None:
    """Read the ``session_store_conn_id`` connection (sync callers: tasks), or None when unset."""
    conn_id = configured_store_conn_id()
    if conn_id is None:
        return None
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as err:
        raise store_connection_missing(conn_id, err) from None
    return conn, conn.extra_dejson


async def adeployment_store_connection() -> DeploymentStoreConnection | None:
    """The same without blocking an event loop (the triggerer)."""
    conn_id = configured_store_conn_id()
    if conn_id is None:
        return None
    from airflow.sdk import BaseHook

    try:
        from airflow_provider_partneros.version_compat import aconnection_extra

        conn = await BaseHook.aget_connection(conn_id)
        extra = await aconnection_extra(conn)
    except Exception as err:
        raise store_connection_missing(conn_id, err) from None
    return conn, extra


def open_entries(
    settings: PartnerOSSettings, deployment: DeploymentStoreConnection | None
) -> tuple[list[StoreEntry], list[str]]:
    """The stores a holder may use for ``settings``, best first: the deployment's (Redis) when
    configured, then the host's files; and a warning for each that cannot be used. Opening does no
    network I/O: a store that is down shows at first use, and the next one in line serves."""
    from airflow_provider_partneros._sessions.file_store import FileStore
    from airflow_provider_partneros._sessions.store import StoreRefused

    entries: list[StoreEntry] = []
    warnings: list[str] = []
    if deployment is not None:
        from airflow_provider_partneros._sessions import redis_store

        conn, extra = deployment
        try:
            entries.append(
                redis_store.open_entry(redis_store.redis_connection_from_airflow(conn, extra), settings)
            )
        except StoreRefused as err:
            warnings.append(f"PartnerOS deployment session store refused: {err} Using the host's store.")
    try:
        entries.append(FileStore(configured_directory()).entry(settings))
    except StoreRefused as err:
        warnings.append(f"PartnerOS session store refused: {err} This task signs in on its own.")
    return entries, warnings


def reopen_entry(ticket: Mapping[str, Any]) -> StoreEntry:
    """Reopen an entry in another process (the steward) from its :meth:`StoreEntry.ticket`."""
    if ticket.get("kind") == "redis":
        from airflow_provider_partneros._sessions import redis_store

        return redis_store.reopen(ticket)
    from airflow_provider_partneros._sessions.file_store import FileEntry

    return FileEntry(Path(str(ticket["directory"])), str(ticket["entry"]))


__all__ = [
    "DEFAULT_LINGER",
    "adeployment_store_connection",
    "config_value",
    "configured_directory",
    "configured_linger",
    "configured_store_conn_id",
    "deployment_store_connection",
    "open_entries",
    "reopen_entry",
]
