"""The event watcher's decisions (``SyncWatch``), without a server, a triggerer or a clock.

``IntegrationSyncedTrigger.run`` only does what a :class:`Step` says; these tests pin the rules:
baseline first, one event per newer healthy sync, the mark stored after delivery, trouble logged
once per change, and the backoff. tests/test_events.py drives the same rules through the loop.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_partneros._protocol.endpoints import SIGN_IN_PATH
from airflow_provider_partneros._protocol.integration_synced import (
    MAX_ERROR_BACKOFF,
    NEVER_SYNCED,
    SyncWatch,
)
from airflow_provider_partneros.exceptions import (
    PartnerOSInvalidCredentialsError,
    PartnerOSRateLimitedError,
    PartnerOSUnavailableError,
)

T0 = "2026-11-30T08:00:00.000Z"
T1 = "2026-11-30T09:00:00.000Z"
POKE = 10.0
FLOOR = 30.0


def new_watch() -> SyncWatch:
    return SyncWatch("conn_1", "partneros_default", POKE, sign_in_floor=FLOOR)


def doc(synced: str | None = T0, status: str = "active", **more: Any) -> dict[str, Any]:
    return {"id": "conn_1", "platform": "hubspot", "status": status, "lastSyncAt": synced, **more}


def levels(step: Any) -> list[int]:
    return [level for level, _ in step.logs]


def unavailable() -> PartnerOSUnavailableError:
    return PartnerOSUnavailableError("PartnerOS answered 503.", endpoint="/api/integrations/conn_1/status")


# --- the mark ------------------------------------------------------------------------------------------


def test_the_first_poll_without_a_stored_mark_is_a_baseline_not_an_event() -> None:
    step = new_watch().on_document(doc(T0))
    assert step.event is None
    assert step.baseline == T0
    assert step.wait == POKE


def test_a_baseline_of_a_never_synced_integration_is_stored_as_the_empty_mark() -> None:
    watch = new_watch()
    assert watch.on_document(doc(None)).baseline == NEVER_SYNCED
    assert watch.on_document(doc(T0)).event is not None


def test_a_stored_mark_replaces_the_baseline() -> None:
    watch = new_watch()
    watch.restore(T0)
    step = watch.on_document(doc(T0))
    assert step.baseline is None
    assert step.event is None


def test_anything_but_a_string_in_the_store_means_no_mark() -> None:
    watch = new_watch()
    assert watch.restore(None).logs == ()
    assert not watch.mark_known


def test_a_later_healthy_sync_fires_one_event_and_its_mark_is_stored_after_delivery() -> None:
    watch = new_watch()
    watch.on_document(doc(T0))
    step = watch.on_document(doc(T1))
    assert step.event is not None
    assert step.event["last_sync_at"] == T1
    assert step.event["previous_sync_at"] == T0
    assert step.mark == T1
    assert watch.on_document(doc(T1)).event is None


def test_a_sync_that_goes_back_in_time_is_not_reported() -> None:
    watch = new_watch()
    watch.on_document(doc(T1))
    assert watch.on_document(doc(T0)).event is None


def test_the_payload_carries_what_a_dag_needs_as_plain_values() -> None:
    watch = new_watch()
    watch.on_document(doc(T0))
    event = watch.on_document(doc(T1, instanceUrl="https://x.example")).event
    assert event == {
        "connection_id": "conn_1",
        "partneros_conn_id": "partneros_default",
        "platform": "hubspot",
        "status": "active",
        "last_sync_at": T1,
        "previous_sync_at": T0,
        "instance_url": "https://x.example",
        "document": doc(T1, instanceUrl="https://x.example"),
    }


# --- health --------------------------------------------------------------------------------------------


def test_no_event_while_unhealthy_even_when_the_sync_time_advances() -> None:
    watch = new_watch()
    watch.on_document(doc(T0))
    assert watch.on_document(doc(T1, status="reauth_required")).event is None


def test_an_unhealthy_status_is_warned_once_then_only_at_debug() -> None:
    watch = new_watch()
    watch.on_document(doc(T0))
    first = watch.on_document(doc(T0, status="error", lastErrorMessage="INVALID_SESSION_ID"))
    again = watch.on_document(doc(T0, status="error"))
    assert levels(first) == [logging.WARNING]
    assert "INVALID_SESSION_ID" in first.logs[0][1]
    assert levels(again) == [logging.DEBUG]


def test_recovery_is_logged_and_the_sync_made_meanwhile_is_reported() -> None:
    watch = new_watch()
    watch.on_document(doc(T0))
    watch.on_document(doc(T0, status="disconnected"))
    step = watch.on_document(doc(T1))
    assert any("is healthy again" in message for _, message in step.logs)
    assert step.event is not None


# --- trouble and backoff -------------------------------------------------------------------------------


def test_the_wait_doubles_while_polls_fail_up_to_the_cap() -> None:
    watch = new_watch()
    waits = [watch.on_error(unavailable()).wait for _ in range(8)]
    assert waits[:4] == [POKE, 2 * POKE, 4 * POKE, 8 * POKE]
    assert max(waits) == MAX_ERROR_BACKOFF


def test_a_good_poll_resets_the_backoff() -> None:
    watch = new_watch()
    watch.on_error(unavailable())
    watch.on_error(unavailable())
    watch.on_document(doc(T0))
    assert watch.on_error(unavailable()).wait == POKE


def test_a_rate_limit_waits_at_least_the_servers_delay() -> None:
    err = PartnerOSRateLimitedError("429", retry_after=45.0, endpoint="/api/integrations/conn_1/status")
    assert new_watch().on_error(err).wait == 45.0


def test_a_refused_sign_in_waits_at_least_the_sign_in_floor() -> None:
    err = PartnerOSUnavailableError("503 on sign-in", endpoint=SIGN_IN_PATH)
    assert new_watch().on_error(err).wait == FLOOR


def test_refused_credentials_make_the_loop_read_the_connection_again() -> None:
    err = PartnerOSInvalidCredentialsError("wrong password", endpoint=SIGN_IN_PATH)
    assert new_watch().on_error(err).reload_connection
    assert not new_watch().on_error(unavailable()).reload_connection


def test_the_same_trouble_is_warned_once() -> None:
    watch = new_watch()
    assert watch.is_new_problem(unavailable())
    assert levels(watch.on_error(unavailable())) == [logging.WARNING]
    assert not watch.is_new_problem(unavailable())
    assert levels(watch.on_error(unavailable())) == [logging.DEBUG]


def test_a_watcher_message_does_not_promise_a_task_retry() -> None:
    err = PartnerOSUnavailableError("PartnerOS answered 503; the task will retry.", endpoint="/x")
    ((_, message),) = new_watch().on_error(err).logs
    assert "the task will retry" not in message
