"""Every difference between the Airflow versions this provider supports, in one place.

The provider supports Airflow 3.2 and newer. What 3.3 added and the code uses is probed here, and
only here, so a reader looking for "what changes on 3.2?" reads one module, and dropping 3.2 means
deleting code here and at the call sites this module's names point to:

* task retry policies (``airflow.sdk.definitions.retry_policy``, 3.3+): :func:`retry_policies_available`;
* the per-task-instance ``task_state_store`` (3.3+; the batch operator keeps its successes there):
  :func:`task_state_store`;
* the watcher's ``asset_state_store`` (3.3+; the event trigger keeps its mark there):
  :func:`asset_state_store`;
* ``Connection.aextra_dejson`` and ``airflow.sdk.log.amask_secret`` (async variants the triggerer
  needs so the event loop never blocks): :func:`aconnection_extra`, :func:`amask_secret`;
* ``conf``: the task SDK's configuration, or core Airflow's where the SDK has none.

Importing this module imports no more than ``airflow.sdk`` already does; each probe runs when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - older task SDKs
    from airflow.configuration import conf


def airflow_version() -> str:
    """The running Airflow's version string, for messages."""
    from airflow.version import version

    return str(version)


def retry_policies_available() -> bool:
    """Whether this Airflow has task retry policies (3.3+)."""
    try:
        import airflow.sdk.definitions.retry_policy  # noqa: F401
    except ImportError:
        return False
    return True


def task_state_store(context: Mapping[str, Any]) -> Any | None:
    """The task instance's state store (Airflow 3.3+), shared by every try; None on Airflow 3.2."""
    return context.get("task_state_store")


def asset_state_store(trigger: object) -> Any | None:
    """The asset state store the triggerer injects into an event trigger (3.3+); None on 3.2."""
    return getattr(trigger, "asset_state_store", None)


async def aconnection_extra(conn: Any) -> Mapping[str, Any]:
    """A connection's extra without blocking the event loop (``aextra_dejson`` where it exists)."""
    aextra = getattr(conn, "aextra_dejson", None)
    if aextra is not None:
        extra: Mapping[str, Any] = await aextra()
        return extra
    return conn.extra_dejson  # type: ignore[no-any-return]


async def amask_secret(secret: str) -> None:
    """Mask a secret in logs from inside an event loop.

    ``amask_secret`` where it exists: the sync ``mask_secret`` talks to the supervisor with a blocking
    send, which must not happen inside the triggerer's event loop.
    """
    try:
        from airflow.sdk import log as sdk_log
    except ImportError:  # pragma: no cover - defensive: masking must never break a call
        return
    amask = getattr(sdk_log, "amask_secret", None)
    if amask is not None:
        await amask(secret)
    else:  # pragma: no cover - Airflow < 3.3
        sdk_log.mask_secret(secret)


__all__ = [
    "aconnection_extra",
    "airflow_version",
    "amask_secret",
    "asset_state_store",
    "conf",
    "retry_policies_available",
    "task_state_store",
]
