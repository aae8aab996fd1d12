"""IntegrationSyncedTrigger (event-driven scheduling), its loop driven directly with asyncio against the
stand-in, and the asset helper. The real triggerer and asset state store: ``test_events_deployment.py``.

Every test runs the watcher's ``run()`` in a background task and checks, when it stops it, that the
generator was still running: a watcher that returns or raises is restarted by the triggerer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from airflow_provider_partneros._sessions import async_transport
from airflow_provider_partneros.testing import DEMO_ORG_ID, DEMO_PASSWORD, Fault, PartnerOSStandIn
from airflow_provider_partneros.triggers import integration_synced
from airflow_provider_partneros.triggers.integration_synced import (
    MARK_KEY,
    IntegrationSyncedTrigger,
    integration_synced_asset,
    integration_synced_uri,
)

CID = "conn_events"
STATUS_KEY = "GET /api/integrations/{id}/status"
SIGN_IN_KEY = "POST /api/auth/sign-in/email"
T0 = "2026-11-30T08:00:00.000Z"
T1 = "2026-11-30T09:00:00.000Z"
T2 = "2026-11-30T10:00:00.000Z"
POKE = 0.05


@pytest.fixture
def conn(standin: PartnerOSStandIn, partneros_connection: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The default connection with fast in-call retries; the integration ``CID`` synced at ``T0``."""
    extra = {"timeout": 5, "retry_backoff": 0.05, "max_retries": 1}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    standin.add_integration(CID, organization=DEMO_ORG_ID, platform="hubspot", last_sync_at=T0)
    return partneros_connection


@pytest.fixture(autouse=True)
def quick_delivery_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock seam: the pause between an event and saving its mark (5 s in a triggerer)."""
    monkeypatch.setattr(integration_synced, "DELIVERY_GRACE", 0.05)


class MemoryAssetStateStore:
    """The part of Airflow 3.3's ``AssetStateStoreAccessors`` the watcher uses (``aget``/``aset`` of
    a single watched asset), kept in a dict that outlives trigger instances like the DB table does.

    Why not the real class: its ``aget``/``aset`` send messages over ``SUPERVISOR_COMMS``, the channel
    to the triggerer's supervisor process, which exists only inside a running triggerer; the test DB
    alone cannot serve them. The real store is exercised end to end by the deployment test. Like the
    real one, ``aset`` refuses ``None`` and ``aget`` returns ``default`` for a missing key.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[tuple[str, Any]] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = json.loads(json.dumps(value))  # JSON, as stored in the DB
        self.writes.append((key, value))


def new_trigger(store: MemoryAssetStateStore | None = None, **kwargs: Any) -> IntegrationSyncedTrigger:
    kwargs.setdefault("connection_id", CID)
    kwargs.setdefault("poke_interval", POKE)
    trigger = IntegrationSyncedTrigger(**kwargs)
    if store is not None:
        trigger.asset_state_store = store  # type: ignore[assignment]  # what a 3.3 triggerer injects
    # else: as this Airflow builds it (3.2: no such attribute at all; 3.3: None until injected)
    trigger._log = logging.getLogger("test_events.watcher")  # type: ignore[assignment]  # caplog sees it
    return trigger


def rebuilt(
    trigger: IntegrationSyncedTrigger, store: MemoryAssetStateStore | None
) -> IntegrationSyncedTrigger:
    """What the triggerer does after a restart: a new instance from the serialized kwargs."""
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("integration_synced.IntegrationSyncedTrigger")
    return new_trigger(store, **kwargs)


class Watch:
    """One watcher's ``run()`` consumed in the background, as the triggerer does; payloads collected."""

    def __init__(self, trigger: IntegrationSyncedTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event.payload)

    async def __aenter__(self) -> Watch:
        self.task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Cancel it like a triggerer shutting down; it must not have ended before that."""
        task, self.task = self.task, None
        if task is None:
            return
        if task.done():
            task.result()  # re-raise what ended it
            pytest.fail("run() returned: a watcher must poll until it is cancelled")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def polls(standin: PartnerOSStandIn, n: int) -> None:
    """Let the watcher make ``n`` more status polls."""
    target = standin.requests[STATUS_KEY] + n
    await wait_until(lambda: standin.requests[STATUS_KEY] >= target)


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())


# --- what it reports --------------------------------------------------------------------------------


def test_first_poll_is_a_baseline_then_one_event_per_new_sync(standin: PartnerOSStandIn, conn: str) -> None:
    async def body() -> None:
        async with Watch(new_trigger()) as watch:
            await polls(standin, 5)
            assert watch.events == [], "the sync that happened before the watcher started is no news"
            standin.set_integration(CID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1)
            await polls(standin, 5)
            assert len(watch.events) == 1, "one event per sync, not one per poll while it stays the same"
            standin.set_integration(CID, last_sync_at=T2)
            await wait_until(lambda: len(watch.events) == 2)
            await polls(standin, 5)
        assert [e["last_sync_at"] for e in watch.events] == [T1, T2]
        assert [e["previous_sync_at"] for e in watch.events] == [T0, T1]

    run(body)


def test_payload_is_json_with_what_a_dag_needs(standin: PartnerOSStandIn, conn: str) -> None:
    async def body() -> None:
        async with Watch(new_trigger()) as watch:
            await polls(standin, 2)
            standin.set_integration(CID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1)
        payload = json.loads(json.dumps(watch.events[0]))  # JSON-serializable, unchanged by the round trip
        assert payload == watch.events[0]
        assert payload["connection_id"] == CID
        assert payload["partneros_conn_id"] == conn
        assert payload["platform"] == "hubspot"
        assert payload["status"] == "active"
        assert payload["last_sync_at"] == T1
        assert payload["document"]["lastSyncAt"] == T1
        assert DEMO_PASSWORD not in json.dumps(payload)

    run(body)


def test_no_event_while_unhealthy_and_one_when_healthy_again(
    standin: PartnerOSStandIn, conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test_events.watcher")

    async def body() -> None:
        async with Watch(new_trigger()) as watch:
            await polls(standin, 2)
            standin.set_integration(CID, status="reauth_required", last_sync_at=T1)
            await polls(standin, 10)
            assert watch.events == [], "a sync is not reported while the integration is unhealthy"
            standin.set_integration(CID, status="active")
            await wait_until(lambda: len(watch.events) == 1)
            await polls(standin, 5)
        assert [e["last_sync_at"] for e in watch.events] == [T1]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, "logged once per change, not once per poll"
        assert "'reauth_required'" in warnings[0]
        assert "Reconnect it in PartnerOS (Settings > Integrations)" in warnings[0]
        assert any("is healthy again" in r.getMessage() for r in caplog.records)

    run(body)


def test_a_sync_that_returns_to_the_same_time_is_not_reported_again(
    standin: PartnerOSStandIn, conn: str
) -> None:
    async def body() -> None:
        async with Watch(new_trigger()) as watch:
            await polls(standin, 2)
            standin.set_integration(CID, last_sync_at=T2)
            await wait_until(lambda: len(watch.events) == 1)
            standin.set_integration(CID, last_sync_at=T1)  # older than what was reported
            await polls(standin, 5)
            standin.set_integration(CID, last_sync_at=T2)
            await polls(standin, 5)
        assert [e["last_sync_at"] for e in watch.events] == [T2]

    run(body)


# --- errors never end run() ----------------------------------------------------------------------------


def test_server_errors_and_unknown_connection_do_not_end_the_watcher(
    standin: PartnerOSStandIn, conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test_events.watcher")

    async def body() -> None:
        async with Watch(new_trigger()) as watch:
            await polls(standin, 2)
            standin.inject(Fault.html_service_unavailable("/api/integrations/*/status", times=6))
            await wait_until(lambda: not standin.pending_faults)
            standin.set_integration(CID, organization="org_elsewhere")  # now 404 for our user
            await polls(standin, 2)
            standin.set_integration(CID, organization=DEMO_ORG_ID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1, timeout=30)
        assert [e["last_sync_at"] for e in watch.events] == [T1]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2, warnings  # one for the 503s, one for the 404
        assert "503" in warnings[0] or "unavailable" in warnings[0].lower()
        assert "Next poll in" in warnings[0]
        assert "task" not in warnings[0], "a watcher has no task to retry"

    standin.add_organization("org_elsewhere", "Elsewhere")
    run(body)


def test_backoff_doubles_while_failing_and_honours_a_429_delay(
    standin: PartnerOSStandIn, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    async def recording_sleep(seconds: float) -> None:  # the clock seam: record what was asked, skip it
        asked.append(seconds)
        await asyncio.sleep(0.001)

    monkeypatch.setattr(integration_synced, "_sleep", recording_sleep)
    # No in-call retries: each fault is one failed poll.
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra={"max_retries": 0}))
    standin.inject(Fault.html_bad_gateway("/api/integrations/*/status", times=3))
    standin.inject(Fault.rate_limited(45, "/api/integrations/*/status", times=1))

    async def body() -> None:
        async with Watch(new_trigger(poke_interval=1.0)):
            await wait_until(lambda: len(asked) >= 5)
        assert asked[:5] == [1.0, 2.0, 4.0, 45.0, 1.0], asked

    run(body)


def test_a_rate_limited_sign_in_waits_for_the_servers_delay(
    standin: PartnerOSStandIn, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    async def recording_sleep(seconds: float) -> None:  # the clock seam: record what was asked, skip it
        asked.append(seconds)
        await asyncio.sleep(0.001)

    monkeypatch.setattr(integration_synced, "_sleep", recording_sleep)
    monkeypatch.setattr(async_transport, "sleep", recording_sleep)
    extra = {"max_retries": 0, "session_sharing": False}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    standin.inject(Fault.rate_limited(30, "/api/auth/sign-in/email", times=1))

    async def body() -> None:
        async with Watch(new_trigger(poke_interval=1.0)):
            await wait_until(lambda: standin.requests[STATUS_KEY] >= 2)
        # The sign-in waits out the server's 30 s (with a little jitter), then polls as usual.
        assert 30.0 <= asked[0] <= 32.0, asked
        assert asked[1] == 1.0, asked  # then the poke interval, as usual
        assert standin.sign_ins == 1

    run(body)


@pytest.mark.parametrize("session_sharing", [True, False], ids=["host-session-store", "no-store"])
def test_refused_sign_in_is_not_retried_every_poll(
    standin: PartnerOSStandIn, conn: str, monkeypatch: pytest.MonkeyPatch, session_sharing: bool
) -> None:
    """The watcher's own floor holds even without the host session store's reuse of a refusal."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTNEROS_DEFAULT",
        standin.connection_json(password="wrong-password", extra={"session_sharing": session_sharing}),
    )

    async def body() -> None:
        async with Watch(new_trigger()):
            await wait_until(lambda: standin.sign_in_attempts >= 1)
            await asyncio.sleep(2.0)  # 40 poke intervals
        assert standin.sign_in_attempts == 1, "a refused sign-in waits at least 10 s before the next try"
        assert standin.requests[STATUS_KEY] == 0

    run(body)


def test_a_fixed_password_is_picked_up_without_a_restart(
    standin: PartnerOSStandIn, conn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test_events.watcher")
    monkeypatch.setattr(integration_synced, "SIGN_IN_RETRY_FLOOR", 0.3)  # seam: time
    good = standin.connection_json(extra={"timeout": 5})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(password="wrong-password"))

    async def body() -> None:
        async with Watch(new_trigger()) as watch:
            await wait_until(lambda: standin.sign_in_attempts >= 1)
            monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", good)
            await wait_until(lambda: standin.sign_ins == 1)
            await polls(standin, 2)  # baseline T0
            standin.set_integration(CID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "password" in warnings[0].lower()
        assert "wrong-password" not in caplog.text

    run(body)


def test_missing_airflow_connection_is_waited_for(standin: PartnerOSStandIn, conn: str) -> None:
    async def body() -> None:
        async with Watch(new_trigger(partneros_conn_id="partneros_not_there")):
            await asyncio.sleep(0.5)
        assert standin.sign_in_attempts == 0

    run(body)


# --- restarts: the mark in the asset state store (3.3) or not (3.2) -----------------------------------


def test_rebuilt_from_kwargs_with_the_store_it_does_not_fire_again(
    standin: PartnerOSStandIn, conn: str
) -> None:
    store = MemoryAssetStateStore()

    async def body() -> None:
        first = new_trigger(store)
        async with Watch(first) as watch:
            await polls(standin, 2)
            standin.set_integration(CID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1)
            await wait_until(lambda: store.values.get(MARK_KEY) == T1)
        assert store.values[MARK_KEY] == T1
        async with Watch(rebuilt(first, store)) as again:
            await polls(standin, 10)
            assert again.events == [], "the sync reported before the restart is not reported twice"
            standin.set_integration(CID, last_sync_at=T2)
            await wait_until(lambda: len(again.events) == 1)
        assert again.events[0]["previous_sync_at"] == T1

    run(body)


def test_with_the_store_a_sync_made_while_stopped_is_reported_after_the_restart(
    standin: PartnerOSStandIn, conn: str
) -> None:
    store = MemoryAssetStateStore()

    async def body() -> None:
        first = new_trigger(store)
        async with Watch(first):
            await polls(standin, 2)
        assert store.values[MARK_KEY] == T0, "the baseline is stored too"
        standin.set_integration(CID, last_sync_at=T1)  # while the triggerer is down
        async with Watch(rebuilt(first, store)) as again:
            await wait_until(lambda: len(again.events) == 1)
            await polls(standin, 5)
        assert [e["last_sync_at"] for e in again.events] == [T1]

    run(body)


def test_crash_between_event_and_saved_mark_repeats_the_event(
    standin: PartnerOSStandIn, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At-least-once: the mark is saved only after the event had time to reach the triggerer's
    supervisor, so a crash in that window reports the sync again (the DAG can de-duplicate on
    ``last_sync_at``); it is never lost."""
    store = MemoryAssetStateStore()

    async def body() -> None:
        first = new_trigger(store)
        async with Watch(first) as watch:
            await polls(standin, 2)
            assert store.values[MARK_KEY] == T0
            monkeypatch.setattr(integration_synced, "DELIVERY_GRACE", 60.0)
            standin.set_integration(CID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1)
        # Stopped ("crashed") right after the event, before its mark was saved.
        assert store.values[MARK_KEY] == T0
        monkeypatch.setattr(integration_synced, "DELIVERY_GRACE", 0.05)
        async with Watch(rebuilt(first, store)) as again:
            await wait_until(lambda: len(again.events) == 1)
            await wait_until(lambda: store.values[MARK_KEY] == T1)
            await polls(standin, 5)
        assert [e["last_sync_at"] for e in watch.events + again.events] == [T1, T1]

    run(body)


def test_a_baseline_taken_before_the_first_sync_is_stored_and_the_first_sync_reported(
    standin: PartnerOSStandIn, conn: str
) -> None:
    standin.set_integration(CID, last_sync_at=None)
    store = MemoryAssetStateStore()

    async def body() -> None:
        first = new_trigger(store)
        async with Watch(first):
            await polls(standin, 2)
        standin.set_integration(CID, last_sync_at=T1)  # the first sync ever, while stopped
        async with Watch(rebuilt(first, store)) as again:
            await wait_until(lambda: len(again.events) == 1)
            await polls(standin, 5)
        assert [(e["last_sync_at"], e["previous_sync_at"]) for e in again.events] == [(T1, None)]

    run(body)


def test_the_store_exists_from_airflow_3_3_on() -> None:
    """Why 3.2 needs its own path: its ``BaseEventTrigger`` has no ``asset_state_store`` at all."""
    from importlib.metadata import version

    from packaging.version import Version

    trigger = IntegrationSyncedTrigger(connection_id=CID)
    has_store = hasattr(trigger, "asset_state_store")
    assert has_store == (Version(version("apache-airflow")) >= Version("3.3.0"))


class BrokenAssetStateStore(MemoryAssetStateStore):
    """A store whose every call fails (the supervisor channel broke, the DB is down...)."""

    async def aget(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("store unavailable")

    async def aset(self, key: str, value: Any) -> None:
        raise RuntimeError("store unavailable")


def test_a_failing_store_is_logged_once_and_the_watcher_goes_on_in_memory(
    standin: PartnerOSStandIn, conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test_events.watcher")

    async def body() -> None:
        async with Watch(new_trigger(BrokenAssetStateStore())) as watch:
            await polls(standin, 2)
            assert watch.events == [], "an unreadable store means a baseline poll, as on Airflow 3.2"
            standin.set_integration(CID, last_sync_at=T1)
            await wait_until(lambda: len(watch.events) == 1)
            standin.set_integration(CID, last_sync_at=T2)
            await wait_until(lambda: len(watch.events) == 2)
            await polls(standin, 3)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "asset state store" in warnings[0]

    run(body)


def test_without_a_store_the_first_poll_after_a_restart_is_a_new_baseline(
    standin: PartnerOSStandIn, conn: str
) -> None:
    """Airflow 3.2 (no asset state store): a sync made while the watcher was not running (triggerer
    down, or between its last poll and a restart) is never reported; later syncs are."""

    async def body() -> None:
        first = new_trigger(None)
        async with Watch(first):
            await polls(standin, 2)
        standin.set_integration(CID, last_sync_at=T1)
        async with Watch(rebuilt(first, None)) as again:
            await polls(standin, 5)
            assert again.events == []
            standin.set_integration(CID, last_sync_at=T2)
            await wait_until(lambda: len(again.events) == 1)
        assert [e["last_sync_at"] for e in again.events] == [T2]

    run(body)


# --- sharing, identity, the asset ----------------------------------------------------------------------


def test_watchers_of_one_connection_share_one_sign_in(standin: PartnerOSStandIn, conn: str) -> None:
    standin.add_integration("conn_events_2", organization=DEMO_ORG_ID, last_sync_at=T0)

    async def body() -> None:
        async with Watch(new_trigger()), Watch(new_trigger(connection_id="conn_events_2")):
            await polls(standin, 10)
        assert standin.sign_ins == 1

    run(body)


def test_kwargs_are_plain_stable_values_without_secrets(standin: PartnerOSStandIn, conn: str) -> None:
    trigger = IntegrationSyncedTrigger(connection_id=f" {CID} ", poke_interval=30)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_partneros.triggers.integration_synced.IntegrationSyncedTrigger"
    assert kwargs == {"connection_id": CID, "partneros_conn_id": "partneros_default", "poke_interval": 30.0}
    assert IntegrationSyncedTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert DEMO_PASSWORD not in json.dumps(kwargs)


def test_asset_name_and_uri_follow_the_documented_scheme() -> None:
    asset = integration_synced_asset(
        "conn_01hx/ä",
        partneros_conn_id="crm",
        poke_interval=5,
        host="App.PartnerOS.com",
        organization="org_1",
    )
    expected = "partneros://app.partneros.com/org_1/integrations/conn_01hx%2F%C3%A4"
    assert asset.name == asset.uri == expected
    assert expected == integration_synced_uri(
        "conn_01hx/ä", "crm", host="app.partneros.com", organization="org_1"
    )
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, IntegrationSyncedTrigger)
    assert watcher.trigger.serialize()[1]["poke_interval"] == 5.0


def test_asset_is_named_by_the_connections_host_and_organization(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM", standin.connection_json(extra={"organization_id": "org_9"}))
    asset = integration_synced_asset(CID, partneros_conn_id="crm")
    assert asset.uri == f"partneros://{standin.base_url.split('://')[1]}/org_9/integrations/{CID}"


def test_asset_of_a_connection_without_organization_names_the_active_one(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM", standin.connection_json())
    assert (
        integration_synced_uri(CID, "crm")
        == f"partneros://{standin.base_url.split('://')[1]}/_/integrations/{CID}"
    )


def test_asset_of_an_unreadable_connection_fails_at_parse_saying_what_to_pass() -> None:
    from airflow_provider_partneros.exceptions import PartnerOSConfigError

    with pytest.raises(PartnerOSConfigError, match="pass host= and organization="):
        integration_synced_asset(CID, partneros_conn_id="no_such_connection")


def test_bad_arguments_fail_when_the_dag_is_parsed() -> None:
    from airflow_provider_partneros.exceptions import PartnerOSConfigError

    with pytest.raises(PartnerOSConfigError, match="connection_id"):
        integration_synced_asset("  ", host="app.partneros.com", organization="org_1")
    with pytest.raises(PartnerOSConfigError, match="poke_interval"):
        integration_synced_asset("conn_1", poke_interval=0, host="app.partneros.com", organization="org_1")
