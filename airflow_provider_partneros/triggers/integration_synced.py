"""Event-driven scheduling: run a DAG each time a PartnerOS CRM integration finishes a new sync.

:class:`IntegrationSyncedTrigger` is a ``BaseEventTrigger`` for an ``AssetWatcher``: the triggerer
runs it for as long as a DAG schedules on the asset, and turns every event it yields into an asset
event (the payload lands in the event's ``extra["payload"]``). :func:`integration_synced_asset` builds
that asset in one line. Delivery guarantees, restarts and the payload: ``docs/events.md``.

How the triggerer treats a watcher decides the design (read in Airflow 3.2 and 3.3's
``triggerer_job_runner.py``): after a yield the same generator is resumed; if ``run()`` returns or
raises, the trigger is rebuilt from its kwargs and started again about a second later; after a
triggerer restart every watcher starts from the top. Hence ``run()`` never returns, never raises for
a PartnerOS problem, and keeps its "last reported sync" mark where a rebuilt trigger finds it: the
asset state store on Airflow 3.3+, only in memory on 3.2 (where the first poll is a baseline).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_partneros._config import DEFAULT_CONN_ID
from airflow_provider_partneros._integration import (
    integration_fix,
    next_poll_delay,
    parse_api_timestamp,
    require_connection_id,
)
from airflow_provider_partneros._protocol import SIGN_IN_PATH
from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSError,
    PartnerOSInvalidCredentialsError,
)

if TYPE_CHECKING:
    from airflow.sdk import Asset

HEALTHY_STATUS = "active"
"""The one status in which a new ``lastSyncAt`` is reported (a failing integration did not sync)."""
MARK_KEY = "partneros_last_reported_sync_at"
"""Asset state store key (Airflow 3.3+) holding the ``lastSyncAt`` of the last event yielded."""
NEVER_SYNCED = ""
"""The stored mark of a baseline taken while the integration had never synced (the store refuses None)."""
DELIVERY_GRACE = 5.0
"""Seconds between yielding an event and saving its mark. The triggerer hands events to its
supervisor about once a second; the mark is saved after that, so a crash in between repeats the
event after a restart instead of losing it (at-least-once, see docs/events.md)."""
MAX_ERROR_BACKOFF = 600.0
"""Longest pause between two polls while something keeps failing (doubles from ``poke_interval``)."""
SIGN_IN_RETRY_FLOOR = 10.0
"""Shortest pause after a refused or rate-limited sign-in: PartnerOS allows 3 sign-ins per 10 s per
IP, shared by every task and trigger on the host, so a refused sign-in is never retried every poll."""
URI_SCHEME = "partneros"

_sleep = asyncio.sleep
"""Every wait of the loop goes through here (the clock seam for tests)."""


def integration_synced_uri(
    connection_id: str,
    partneros_conn_id: str = DEFAULT_CONN_ID,
    *,
    host: str | None = None,
    organization: str | None = None,
) -> str:
    """``partneros://<PartnerOS host>/<organization>/integrations/<connection id>``, percent-encoded.

    The data source, not the Airflow connection, names the asset (docs/lineage.md): ``host`` (e.g.
    ``app.partneros.com``) and ``organization`` (the organization id; ``"_"`` for "the session's active
    one"). Pass both and nothing is read at DAG parse. Leave one out and it comes from the Airflow
    connection ``partneros_conn_id`` (its host and ``organization_id``): one connection lookup per parse
    of the DAG file, free for ``AIRFLOW_CONN_*`` variables, a round trip for a remote secrets backend.
    This string is the asset's name and URI, so other DAGs can refer to it with ``Asset.ref(name=...)``.
    """
    from airflow_provider_partneros.assets import asset_uri, host_of

    cid = require_connection_id(connection_id)
    if host is None or organization is None:
        conn_host, conn_org = _connection_source(partneros_conn_id)
        host = conn_host if host is None else host
        organization = conn_org if organization is None else organization
    try:
        return asset_uri("integrations", cid, organization=organization, host=host_of(host))
    except ValueError as err:
        raise PartnerOSConfigError(f"Cannot name the asset of integration {cid!r}: {err}") from None


def _connection_source(partneros_conn_id: str) -> tuple[str, str | None]:
    """The PartnerOS host and organization of an Airflow connection, read at DAG parse (no request)."""
    from airflow.sdk import BaseHook

    from airflow_provider_partneros._config import settings_from_airflow_connection

    if not isinstance(partneros_conn_id, str) or not partneros_conn_id.strip():
        raise PartnerOSConfigError(
            f"partneros_conn_id must be a non-empty Airflow connection id, got {partneros_conn_id!r}."
        )
    try:
        conn = BaseHook.get_connection(partneros_conn_id)
        settings = settings_from_airflow_connection(partneros_conn_id, conn, conn.extra_dejson)
    except Exception as err:
        raise PartnerOSConfigError(
            f"The asset's name comes from the PartnerOS host and organization, read at DAG parse from the "
            f"Airflow connection {partneros_conn_id!r}, which could not be read "
            f"({type(err).__name__}: {err}). "
            "Make the connection visible to the DAG processor, or pass host= and organization= "
            "(docs/events.md)."
        ) from None
    return settings.base_url, settings.organization_id


def integration_synced_asset(
    connection_id: str,
    partneros_conn_id: str = DEFAULT_CONN_ID,
    *,
    poke_interval: float = 60.0,
    host: str | None = None,
    organization: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Asset:
    """An ``Asset`` that receives one event per new sync of a CRM integration; schedule a DAG on it.

    ``schedule=[integration_synced_asset("conn_123")]``. Its watcher is an
    :class:`IntegrationSyncedTrigger` polling every ``poke_interval`` seconds. The asset is the
    integration itself (``partneros://<host>/<organization>/integrations/<id>``, see
    :func:`integration_synced_uri` for ``host`` and ``organization``): the same dataset the sensor and
    the schema operator report to OpenLineage.
    """
    from airflow.sdk import Asset, AssetWatcher

    uri = integration_synced_uri(connection_id, partneros_conn_id, host=host, organization=organization)
    trigger = IntegrationSyncedTrigger(
        connection_id=connection_id, partneros_conn_id=partneros_conn_id, poke_interval=poke_interval
    )
    return Asset(
        name=uri,
        uri=uri,
        extra=dict(extra or {}),
        watchers=[AssetWatcher(name=f"partneros_synced_{trigger.connection_id}", trigger=trigger)],
    )


class IntegrationSyncedTrigger(BaseEventTrigger):
    """Yield one event each time a PartnerOS integration's ``lastSyncAt`` advances while it is healthy.

    :param connection_id: the PartnerOS CRM connection id.
    :param partneros_conn_id: the Airflow connection with the PartnerOS credentials.
    :param poke_interval: seconds between two polls (errors lengthen it, see ``docs/events.md``).
    """

    def __init__(
        self,
        connection_id: str,
        partneros_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.connection_id = require_connection_id(connection_id)
        self.partneros_conn_id = partneros_conn_id
        self.poke_interval = float(poke_interval)
        if not self.poke_interval > 0:
            raise PartnerOSConfigError(
                f"poke_interval must be a positive number of seconds, got {poke_interval!r}."
            )
        # Per run() state (a rebuilt trigger starts afresh; only the store outlives it).
        self._problem: str | None = None
        self._failures = 0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Plain, stable values only: their hash is the watcher's identity (never a secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "connection_id": self.connection_id,
                "partneros_conn_id": self.partneros_conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    # --- the loop ---------------------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield once per new healthy sync. Nothing PartnerOS does ends this loop."""
        from airflow_provider_partneros._sessions.async_transport import load_settings, shared_session

        store = _MarkStore(self)
        mark: str | None = None  # lastSyncAt of the last event reported (or the baseline)
        mark_known = False
        while True:
            try:
                settings = await load_settings(self.partneros_conn_id, self.log)
            except Exception as err:  # a missing or unusable Airflow connection: fixable while we wait
                await self._failed(_describe(err), err)
                continue
            try:
                async with shared_session(settings, self.log) as session:
                    while True:
                        if not mark_known:
                            loaded = await store.load()
                            if isinstance(loaded, str):  # a mark saved by an earlier run of this watcher
                                mark, mark_known = loaded or None, True
                                self.log.info(
                                    "Watching integration %s: last reported sync %s (from the asset state "
                                    "store); each later sync while %r yields one event.",
                                    self.connection_id,
                                    mark,
                                    HEALTHY_STATUS,
                                )
                        try:
                            document = await session.get_integration_status(self.connection_id)
                        except PartnerOSError as err:
                            await self._failed(_describe(err), err)
                            if isinstance(err, (PartnerOSInvalidCredentialsError, PartnerOSConfigError)):
                                break  # reload the connection: the password may have been fixed meanwhile
                            continue
                        except (
                            Exception
                        ) as err:  # never end the watcher: the triggerer would restart it at once
                            if _describe(err)[0] != self._problem:
                                self.log.exception("Unexpected error polling PartnerOS; polling goes on.")
                            await self._failed(_describe(err), err)
                            continue
                        self._failures = 0
                        synced_raw = document.get("lastSyncAt")
                        synced = (
                            synced_raw
                            if isinstance(synced_raw, str) and parse_api_timestamp(synced_raw)
                            else None
                        )
                        if not mark_known:
                            # First look with no stored mark: the current sync is the baseline, not news.
                            mark, mark_known = synced, True
                            self.log.info(
                                "Watching integration %s: baseline lastSyncAt %s; each later sync while %r "
                                "yields one event.",
                                self.connection_id,
                                synced,
                                HEALTHY_STATUS,
                            )
                            await store.save(synced or NEVER_SYNCED)
                        status = document.get("status")
                        if status != HEALTHY_STATUS:
                            self._note_problem(*_unhealthy(document))
                        else:
                            self._note_recovered()
                            if synced is not None and _later(synced, mark):
                                previous, mark = mark, synced
                                self.log.info(
                                    "Integration %s synced at %s (previous %s): yielding an event.",
                                    self.connection_id,
                                    synced,
                                    previous,
                                )
                                yield TriggerEvent(self._payload(document, synced, previous))  # type: ignore[no-untyped-call]
                                # Resumed: the triggerer queued the event. Give it time to hand it over
                                # before saving the mark (a crash in between repeats, never loses, it).
                                await _sleep(DELIVERY_GRACE)
                                await store.save(synced)
                                await _sleep(max(self.poke_interval - DELIVERY_GRACE, 0.0))
                                continue
                        await _sleep(self.poke_interval)
            except Exception as err:  # e.g. the session's own clean-up: still never end the watcher
                if _describe(err)[0] != self._problem:
                    self.log.exception("Unexpected error around the PartnerOS session; polling goes on.")
                await self._failed(_describe(err), err)

    def _payload(self, document: Mapping[str, Any], synced: str, previous: str | None) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "partneros_conn_id": self.partneros_conn_id,
            "platform": document.get("platform"),
            "status": document.get("status"),
            "last_sync_at": synced,
            "previous_sync_at": previous,
            "instance_url": document.get("instanceUrl"),
            "document": dict(document),
        }

    # --- trouble: log once per change, back off -----------------------------------------------------------

    async def _failed(self, problem: tuple[str, str], err: BaseException) -> None:
        """Log the problem if it is new, then sleep: doubling from ``poke_interval``, a 429's delay
        honoured, and never less than the sign-in floor after a refused sign-in."""
        self._failures += 1
        delay = min(
            self.poke_interval * 2 ** min(self._failures - 1, 20), max(MAX_ERROR_BACKOFF, self.poke_interval)
        )
        if isinstance(err, PartnerOSError):
            delay = max(delay, next_poll_delay(self.poke_interval, err))
            if err.endpoint == SIGN_IN_PATH:
                delay = max(delay, SIGN_IN_RETRY_FLOOR)
        self._note_problem(*problem, next_in=delay)
        await _sleep(delay)

    def _note_problem(self, key: str, message: str, next_in: float | None = None) -> None:
        when = f" Next poll in {next_in:.3g} s." if next_in is not None else ""
        if key != self._problem:
            self._problem = key
            self.log.warning(
                "Integration %s: %s The watcher keeps polling and yields no event until it is healthy "
                "again and has synced anew.%s",
                self.connection_id,
                message,
                when,
            )
        else:
            self.log.debug("Integration %s: still %s.%s", self.connection_id, key, when)

    def _note_recovered(self) -> None:
        if self._problem is not None:
            self.log.info("Integration %s is healthy again (was: %s).", self.connection_id, self._problem)
            self._problem = None


# --- the mark: asset state store on 3.3+, memory on 3.2 --------------------------------------------------


class _MarkStore:
    """The last reported ``lastSyncAt``, kept in the watcher's asset state store when there is one.

    Airflow 3.3+ injects ``asset_state_store`` (an ``AssetStateStoreAccessors`` over the watched assets)
    before ``run()``; 3.2 has none, and then the mark lives only as long as the generator. A store that
    fails is logged once and never stops the watcher: the mark is then kept in memory only (a failed
    read means a baseline poll, as on 3.2).
    """

    def __init__(self, trigger: IntegrationSyncedTrigger) -> None:
        self.trigger = trigger
        self.accessors: Any = getattr(trigger, "asset_state_store", None)
        self._warned = False

    async def load(self) -> Any:
        """The stored mark: a string, or None (no store, nothing stored yet, or the store failed)."""
        if self.accessors is None:
            return None
        try:
            return await self.accessors.aget(MARK_KEY)
        except Exception as err:
            self._warn(f"cannot read the asset state store ({type(err).__name__}: {err})")
            return None

    async def save(self, mark: str | None) -> None:
        if self.accessors is None or mark is None:
            return
        try:
            await self.accessors.aset(MARK_KEY, mark)
        except Exception as err:
            self._warn(
                f"cannot save lastSyncAt {mark} to the asset state store ({type(err).__name__}: {err})"
            )

    def _warn(self, what: str) -> None:
        if not self._warned:
            self._warned = True
            self.trigger.log.warning(
                "Integration %s: %s. Until it works, a triggerer restart may repeat or skip one sync.",
                self.trigger.connection_id,
                what,
            )


# --- helpers ---------------------------------------------------------------------------------------------


def _later(synced: str, mark: str | None) -> bool:
    if mark is None:
        return True
    before = parse_api_timestamp(mark)
    now = parse_api_timestamp(synced)
    return now is not None and (before is None or now > before)


def _unhealthy(document: Mapping[str, Any]) -> tuple[str, str]:
    status = document.get("status")
    if not isinstance(status, str):
        return (
            "unreadable status",
            f"PartnerOS answered a status document without a status ({sorted(document)[:10]}).",
        )
    said = document.get("lastErrorMessage")
    said_text = f" Last error: {said.rstrip('.')}." if isinstance(said, str) and said.strip() else ""
    return f"status {status!r}", f"is {status!r}.{said_text} {integration_fix(status)}."


def _describe(err: BaseException) -> tuple[str, str]:
    """A key that changes only when the kind of trouble does, and the text that says what to do."""
    if isinstance(err, PartnerOSError):
        # The messages are written for tasks; a watcher has no task to retry, it polls on.
        return f"{type(err).__name__}:{err.status}", err.message.replace("; the task will retry.", ".")
    return type(err).__name__, f"{type(err).__name__}: {err}. Check the Airflow connection and the network."


__all__ = [
    "IntegrationSyncedTrigger",
    "integration_synced_asset",
    "integration_synced_uri",
]
