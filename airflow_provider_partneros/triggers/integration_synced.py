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

``run()`` is a thin loop: what to report, log and wait is decided by
:class:`~airflow_provider_partneros._protocol.integration_synced.SyncWatch`, which has no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_partneros._connection.defaults import DEFAULT_CONN_ID
from airflow_provider_partneros._protocol.integration import require_connection_id
from airflow_provider_partneros._protocol.integration_synced import Step, SyncWatch
from airflow_provider_partneros.exceptions import PartnerOSConfigError, PartnerOSError
from airflow_provider_partneros.version_compat import asset_state_store

if TYPE_CHECKING:
    from airflow.sdk import Asset

MARK_KEY = "partneros_last_reported_sync_at"
"""Asset state store key (Airflow 3.3+) holding the ``lastSyncAt`` of the last event yielded."""
DELIVERY_GRACE = 5.0
"""Seconds between yielding an event and saving its mark. The triggerer hands events to its
supervisor about once a second; the mark is saved after that, so a crash in between repeats the
event after a restart instead of losing it (at-least-once, see docs/events.md)."""
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
    from airflow_provider_partneros._connection.settings import read_airflow_connection

    if not isinstance(partneros_conn_id, str) or not partneros_conn_id.strip():
        raise PartnerOSConfigError(
            f"partneros_conn_id must be a non-empty Airflow connection id, got {partneros_conn_id!r}."
        )
    try:
        settings = read_airflow_connection(partneros_conn_id)
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

    # --- the loop: I/O only; every decision is SyncWatch's (airflow_provider_partneros._protocol) ------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield once per new healthy sync. Nothing PartnerOS does ends this loop."""
        from airflow_provider_partneros._sessions.async_transport import load_settings, shared_session

        store = MarkStore(self)
        # Per run() state (a rebuilt trigger starts afresh; only the store outlives it).
        watch = SyncWatch(self.connection_id, self.partneros_conn_id, self.poke_interval, SIGN_IN_RETRY_FLOOR)
        while True:
            try:
                settings = await load_settings(self.partneros_conn_id, self.log)
            except Exception as err:  # a missing or unusable Airflow connection: fixable while we wait
                await _sleep(self._emit(watch.on_error(err)).wait)
                continue
            try:
                async with shared_session(settings, self.log) as session:
                    while True:
                        if not watch.mark_known:
                            self._emit(watch.restore(await store.load()))
                        try:
                            document = await session.get_integration_status(self.connection_id)
                        except Exception as err:  # never end the watcher: the triggerer would restart it
                            if not isinstance(err, PartnerOSError) and watch.is_new_problem(err):
                                self.log.exception("Unexpected error polling PartnerOS; polling goes on.")
                            step = self._emit(watch.on_error(err))
                            await _sleep(step.wait)
                            if step.reload_connection:
                                break  # the password may have been fixed meanwhile
                            continue
                        step = self._emit(watch.on_document(document))
                        if step.baseline is not None:
                            await store.save(step.baseline)
                        if step.event is None:
                            await _sleep(step.wait)
                            continue
                        yield TriggerEvent(step.event)  # type: ignore[no-untyped-call]
                        # Resumed: the triggerer queued the event. Give it time to hand it over before
                        # saving the mark (a crash in between repeats, never loses, it).
                        await _sleep(DELIVERY_GRACE)
                        await store.save(step.mark)
                        await _sleep(max(step.wait - DELIVERY_GRACE, 0.0))
            except Exception as err:  # e.g. the session's own clean-up: still never end the watcher
                if watch.is_new_problem(err):
                    self.log.exception("Unexpected error around the PartnerOS session; polling goes on.")
                await _sleep(self._emit(watch.on_error(err)).wait)

    def _emit(self, step: Step) -> Step:
        """Log what the step says (formatted already: the watch has no logger)."""
        for level, message in step.logs:
            self.log.log(level, "%s", message)
        return step


# --- the mark: asset state store on 3.3+, memory on 3.2 --------------------------------------------------


class MarkStore:
    """The last reported ``lastSyncAt``, kept in the watcher's asset state store when there is one.

    Airflow 3.3+ injects ``asset_state_store`` (an ``AssetStateStoreAccessors`` over the watched assets)
    before ``run()``; 3.2 has none, and then the mark lives only as long as the generator. A store that
    fails is logged once and never stops the watcher: the mark is then kept in memory only (a failed
    read means a baseline poll, as on 3.2).
    """

    def __init__(self, trigger: IntegrationSyncedTrigger) -> None:
        self.trigger = trigger
        self.accessors: Any = asset_state_store(trigger)
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


__all__ = [
    "IntegrationSyncedTrigger",
    "integration_synced_asset",
    "integration_synced_uri",
]
