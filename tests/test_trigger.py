"""IntegrationStatusTrigger and the shared async session, run directly with asyncio against the stand-in,
plus the I/O-free pieces the sensor and trigger share (argument checks, ``evaluate``, event handling)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_partneros._protocol.integration import (
    evaluate,
    next_poll_delay,
    parse_synced_after,
    validate_arguments,
)
from airflow_provider_partneros._sessions import async_transport
from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSError,
    PartnerOSFatalError,
    PartnerOSNotFoundError,
    PartnerOSRateLimitedError,
    PartnerOSUnavailableError,
)
from airflow_provider_partneros.testing import (
    DEMO_BROKEN_CONNECTION,
    DEMO_ORG_ID,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    Fault,
    PartnerOSStandIn,
)
from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger

STATUS_KEY = "GET /api/integrations/{id}/status"


@pytest.fixture
def conn(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    """``AIRFLOW_CONN_PARTNEROS_DEFAULT``: what ``aget_connection`` reads outside a task too."""
    extra = {"timeout": 5, "retry_backoff": 0.05, "max_retries": 1}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    return "partneros_default"


async def first_event(trigger: IntegrationStatusTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, "a trigger yields exactly one event"
    payload: dict[str, Any] = events[0]
    return payload


def run_one(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("poke_interval", 0.05)
    return asyncio.run(first_event(IntegrationStatusTrigger(**kwargs)))


# --- serialization ----------------------------------------------------------------------------------


def test_serialize_holds_plain_values_and_no_secret(standin: PartnerOSStandIn, conn: str) -> None:
    trigger = IntegrationStatusTrigger(
        connection_id=DEMO_SALESFORCE_CONNECTION,
        synced_after="2026-01-31T10:00:00+02:00",
        poke_interval=0.05,
        timeout_at="2099-01-01T00:00:00+00:00",
    )
    asyncio.run(first_event(trigger))  # a finished run leaves nothing secret behind either
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_partneros.triggers.integration.IntegrationStatusTrigger"
    text = json.dumps(kwargs)  # plain JSON values only
    assert DEMO_PASSWORD not in text
    assert "cookie" not in text.lower()
    assert "session_token" not in text
    assert kwargs["synced_after"] == "2026-01-31T08:00:00+00:00"
    assert set(kwargs) == {
        "connection_id",
        "partneros_conn_id",
        "target_statuses",
        "failure_statuses",
        "synced_after",
        "poke_interval",
        "max_transient_errors",
        "timeout_at",
    }
    assert IntegrationStatusTrigger(**kwargs).serialize() == (classpath, kwargs)


# --- events -----------------------------------------------------------------------------------------


def test_success_event_carries_the_document(standin: PartnerOSStandIn, conn: str) -> None:
    event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION)
    assert event["status"] == "success"
    assert event["document"]["id"] == DEMO_SALESFORCE_CONNECTION
    assert standin.sign_ins == standin.sign_outs == 1


def test_failure_status_event(standin: PartnerOSStandIn, conn: str) -> None:
    event = run_one(connection_id=DEMO_BROKEN_CONNECTION)
    assert event["status"] == "failure"
    assert event["error_class"] == "PartnerOSIntegrationFailedError"
    assert "INVALID_SESSION_ID" in event["message"]


def test_not_found_is_a_failure(standin: PartnerOSStandIn, conn: str) -> None:
    event = run_one(connection_id="conn_nope")
    assert (event["status"], event["error_class"]) == ("failure", "PartnerOSNotFoundError")


def test_wrong_password_is_a_failure(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(password="wrong-password"))
    event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION)
    assert (event["status"], event["error_class"]) == ("failure", "PartnerOSInvalidCredentialsError")
    assert "wrong-password" not in json.dumps(event)


def test_transient_errors_ridden_out_up_to_the_bound(standin: PartnerOSStandIn, conn: str) -> None:
    # 4 x 503: two polls of two attempts each fail, the third poll succeeds (bound 2).
    standin.inject(Fault.html_service_unavailable("/api/integrations/*/status", times=4))
    event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION, max_transient_errors=2)
    assert event["status"] == "success"
    assert event["polls"] == 3


def test_rate_limit_beyond_the_in_call_retries_delays_the_next_poll_as_asked(
    standin: PartnerOSStandIn, conn: str, mocker: Any
) -> None:
    """A 429 that outlasts the in-call retry is not answered by a poll every ``poke_interval``."""
    real_sleep = asyncio.sleep
    asked: list[float] = []

    async def fast_sleep(seconds: float, result: Any = None) -> Any:  # the clock seam: record, skip
        asked.append(seconds)
        return await real_sleep(0, result)

    mocker.patch("asyncio.sleep", fast_sleep)
    standin.inject(Fault.rate_limited(7, "/api/integrations/*/status", times=2))  # max_retries=1
    event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION, poke_interval=0.05)
    assert event["status"] == "success"
    assert standin.requests[STATUS_KEY] == 3
    in_call, before_next_poll = asked
    assert in_call >= 7  # the server's delay plus a little jitter
    assert before_next_poll == 7  # not poke_interval (0.05)


def test_transient_errors_beyond_the_bound_give_an_error_event(standin: PartnerOSStandIn, conn: str) -> None:
    standin.inject(Fault.html_bad_gateway("/api/integrations/*/status", times=None))
    event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION, max_transient_errors=1)
    assert (event["status"], event["error_class"]) == ("error", "PartnerOSUnavailableError")
    assert "max_transient_errors=1" in event["message"]
    assert standin.sign_ins == standin.sign_outs == 1


def test_deadline_gives_a_timeout_event(standin: PartnerOSStandIn, conn: str) -> None:
    standin.set_integration(DEMO_SALESFORCE_CONNECTION, status="disconnected")
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.3)).isoformat()
    started = time.monotonic()
    event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION, failure_statuses=[], timeout_at=soon)
    assert event["status"] == "timeout"
    assert time.monotonic() - started < 3


def test_missing_airflow_connection_is_an_event_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", raising=False)
    event = run_one(connection_id="conn_x", partneros_conn_id="partneros_missing_for_test")
    assert event["status"] in ("error", "failure")
    assert "partneros_missing_for_test" in event["message"]


# --- one shared session per event loop --------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_200_triggers_share_one_sign_in_and_one_re_sign_in(standin: PartnerOSStandIn, conn: str) -> None:
    """Default rate limit (3 sign-ins per 10 s): 200 triggers must not make a 429 storm."""
    n = 200
    standin.add_integration("conn_many", organization=DEMO_ORG_ID, status="disconnected")
    figures: dict[str, Any] = {}

    async def scenario() -> list[dict[str, Any]]:
        triggers = [
            IntegrationStatusTrigger(
                connection_id="conn_many", failure_statuses=["reauth_required"], poke_interval=0.5
            )
            for _ in range(n)
        ]
        tasks = [asyncio.create_task(first_event(t)) for t in triggers]
        await wait_for(lambda: standin.requests[STATUS_KEY] >= n)
        figures["sign_ins_first_round"] = standin.sign_ins
        standin.expire_sessions()
        polled = standin.requests[STATUS_KEY]
        await wait_for(lambda: standin.requests[STATUS_KEY] >= polled + n)
        figures["sign_ins_after_expiry"] = standin.sign_ins
        standin.set_integration("conn_many", status="active")
        return await asyncio.gather(*tasks)

    started = time.monotonic()
    events = asyncio.run(scenario())
    figures["seconds"] = round(time.monotonic() - started, 1)
    print(f"200 triggers: {figures}")
    assert [e["status"] for e in events] == ["success"] * n
    assert figures["sign_ins_first_round"] == 1
    assert figures["sign_ins_after_expiry"] == 2
    assert standin.sign_ins == 2
    assert standin.sign_in_attempts == 2
    assert all(r.status != 429 for r in standin.request_log)
    # The expired session cannot be signed out; the renewed one is, by the last trigger to finish.
    assert standin.sign_outs == 1
    assert standin.active_sessions == 0


def test_cancelled_trigger_signs_out(standin: PartnerOSStandIn, conn: str) -> None:
    """The triggerer cancels a trigger when its task is cleared or times out: nothing stays signed in."""
    standin.set_integration(DEMO_SALESFORCE_CONNECTION, status="disconnected")

    async def scenario() -> None:
        trigger = IntegrationStatusTrigger(
            connection_id=DEMO_SALESFORCE_CONNECTION, failure_statuses=[], poke_interval=0.05
        )
        task = asyncio.create_task(first_event(trigger))
        await wait_for(lambda: standin.requests[STATUS_KEY] >= 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert standin.sign_ins == standin.sign_outs == 1
    assert standin.active_sessions == 0


# --- never blocking the event loop -----------------------------------------------------------------
# Checked by what runs, not by how long it takes: while a trigger runs, blocking calls made on the
# event loop's thread are recorded (the stand-in's threads run no loop, so they are exempt).

_SOCKET_CALLS = ("connect", "recv", "recv_into", "send", "sendall", "accept")


@pytest.fixture
def blocking_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Blocking calls made on a thread that is running an event loop, as ``"what"`` strings."""
    import socket

    import requests

    calls: list[str] = []

    def on_loop_thread() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if on_loop_thread() and seconds > 0:
            calls.append(f"time.sleep({seconds})")
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    for name in _SOCKET_CALLS:
        real = getattr(socket.socket, name)

        def wrapper(sock: socket.socket, *args: Any, _name: str = name, _real: Any = real) -> Any:
            if on_loop_thread() and sock.gettimeout() != 0.0:  # asyncio's own sockets are non-blocking
                calls.append(f"blocking socket.{_name}")
            return _real(sock, *args)

        monkeypatch.setattr(socket.socket, name, wrapper)
    real_send = requests.Session.send

    def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
        if on_loop_thread():
            calls.append(f"requests {request.method} {request.path_url}")
        return real_send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    return calls


def test_blocking_call_detector_sees_blocking_calls(
    blocking_calls: list[str], standin: PartnerOSStandIn
) -> None:
    """The detector below is only worth something if it can fail."""
    import socket

    import requests

    async def blocking() -> None:  # deliberately what a trigger must never do
        time.sleep(0.001)  # noqa: ASYNC251
        requests.get(standin.base_url + "/api/auth/get-session", timeout=5)  # noqa: ASYNC210
        with socket.create_connection(("127.0.0.1", int(standin.base_url.rsplit(":", 1)[1])), timeout=5):
            pass

    asyncio.run(blocking())
    assert "time.sleep(0.001)" in blocking_calls
    assert "requests GET /api/auth/get-session" in blocking_calls
    assert "blocking socket.connect" in blocking_calls


def test_trigger_never_blocks_the_event_loop(
    blocking_calls: list[str], standin: PartnerOSStandIn, conn: str
) -> None:
    """Connection lookup, sign-in, polls, a 502 and a 429 retried, a 401 and re-sign-in, sign-out."""
    standin.set_integration(DEMO_SALESFORCE_CONNECTION, status="disconnected")
    standin.inject(Fault.html_bad_gateway("/api/integrations/*/status"))
    standin.inject(Fault.rate_limited(1, "/api/integrations/*/status"))

    async def scenario() -> dict[str, Any]:
        trigger = IntegrationStatusTrigger(
            connection_id=DEMO_SALESFORCE_CONNECTION, failure_statuses=[], poke_interval=0.05
        )
        task = asyncio.create_task(first_event(trigger))
        await wait_for(lambda: standin.requests[STATUS_KEY] >= 3)
        standin.expire_sessions()
        await wait_for(lambda: standin.sign_ins == 2)
        standin.set_integration(DEMO_SALESFORCE_CONNECTION, status="active")
        return await task

    event = asyncio.run(scenario())
    assert event["status"] == "success"
    statuses = [r.status for r in standin.request_log if r.route == "/api/integrations/{id}/status"]
    assert {502, 429, 401} <= set(statuses)
    assert standin.sign_ins == 2
    assert standin.sign_outs == 1  # the expired session cannot be signed out; the renewed one is
    assert blocking_calls == []


# The per-exchange deadline: ``_bounded`` is asyncio.timeout on 3.11+, ``bounded_py310`` on 3.10;
# both are checked on every Python, including the race that asyncio.wait_for loses before 3.12.
BOUNDED = [
    pytest.param(async_transport.bounded, id="this-python"),
    pytest.param(async_transport.bounded_py310, id="py310-variant"),
]


@pytest.mark.parametrize("bounded", BOUNDED)
def test_deadline_turns_a_slow_exchange_into_a_timeout(bounded: Callable[..., Any]) -> None:
    async def scenario() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await bounded(asyncio.sleep(10), 0.05)
        assert await bounded(asyncio.sleep(0, "answer"), 5) == "answer"
        await asyncio.sleep(0.1)  # a deadline already met never cancels the task later

    asyncio.run(scenario())


@pytest.mark.parametrize("bounded", BOUNDED)
def test_deadline_never_swallows_a_cancellation_that_arrives_as_the_exchange_completes(
    bounded: Callable[..., Any],
) -> None:
    """The triggerer cancels a trigger at the very moment its answer arrives: the trigger must stop."""

    async def scenario() -> None:
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(bounded(answer, 10))
        await asyncio.sleep(0)  # the task now waits for the answer
        answer.set_result("status document")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(scenario())


def test_poke_mode_hook_is_closed_on_kill(standin: PartnerOSStandIn, conn: str) -> None:
    s = sensor(
        connection_id=DEMO_SALESFORCE_CONNECTION, target_statuses=["reauth_required"], failure_statuses=[]
    )
    s._prepare()
    assert not s.poke({}).is_done
    assert not s.poke({}).is_done
    assert standin.sign_ins == 1
    s.on_kill()
    assert standin.sign_outs == 1
    assert standin.active_sessions == 0


def test_each_event_loop_has_its_own_session(standin: PartnerOSStandIn, conn: str) -> None:
    """dag.test() runs every trigger in a fresh loop: a session cannot outlive its loop."""
    for _ in range(2):
        assert run_one(connection_id=DEMO_SALESFORCE_CONNECTION)["status"] == "success"
    assert standin.sign_ins == standin.sign_outs == 2


def test_a_refused_sign_in_is_not_repeated_by_every_waiter(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTNEROS_DEFAULT",
        standin.connection_json(password="wrong-password", extra={"retry_backoff": 0.05}),
    )

    async def many() -> list[dict[str, Any]]:
        triggers = [IntegrationStatusTrigger(connection_id=DEMO_SALESFORCE_CONNECTION) for _ in range(20)]
        return await asyncio.gather(*(first_event(t) for t in triggers))

    events = asyncio.run(many())
    assert {e["error_class"] for e in events} == {"PartnerOSInvalidCredentialsError"}
    assert standin.sign_in_attempts == 1


# --- the sensor's side: arguments and events --------------------------------------------------------


def sensor(**kwargs: Any) -> Any:
    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    kwargs.setdefault("task_id", "gate")
    kwargs.setdefault("connection_id", "conn_1")
    return IntegrationStatusSensor(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"connection_id": ""}, "connection_id"),
        ({"connection_id": "   "}, "connection_id"),
        ({"target_statuses": ["active", "healthy"]}, "'healthy'"),
        ({"failure_statuses": "broken"}, "'broken'"),
        ({"target_statuses": []}, "at least one"),
        ({"target_statuses": ["active", "error"]}, "both"),
        ({"synced_after": "yesterday-ish"}, "synced_after"),
        ({"synced_after": 12345}, "synced_after"),
        ({"max_transient_errors": -1}, "max_transient_errors"),
    ],
)
def test_bad_arguments_fail_at_parse(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(PartnerOSConfigError, match=text.replace("(", r"\(")):
        sensor(**kwargs)


def test_templates_and_empty_values_pass_at_parse() -> None:
    s = sensor(connection_id="{{ params.cid }}", synced_after="{{ data_interval_end }}")
    assert s.template_fields == ("connection_id", "synced_after")
    assert sensor(synced_after="").synced_after == ""
    assert sensor(target_statuses="active", failure_statuses=[]).failure_statuses == ()
    assert sensor(target_statuses=["Active", "active"]).target_statuses == ("active",)


def test_deferrable_default_comes_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    default = inspect.signature(IntegrationStatusSensor.__init__).parameters["deferrable"].default
    assert default is False  # [operators] default_deferrable is unset in the test config
    assert sensor(deferrable=True).deferrable is True


def test_sensor_and_trigger_defaults_agree() -> None:
    from airflow_provider_partneros.sensors import integration as sensor_module
    from airflow_provider_partneros.triggers import integration as trigger_module

    assert sensor_module.DEFAULT_MAX_TRANSIENT_ERRORS == trigger_module.DEFAULT_MAX_TRANSIENT_ERRORS


def test_execute_complete_success_returns_the_document() -> None:
    doc = {"id": "conn_1", "status": "active", "lastSyncAt": "2026-01-01T00:00:00.000Z"}
    assert sensor().execute_complete({}, {"status": "success", "document": doc}) == doc


@pytest.mark.parametrize(
    "event",
    [
        None,
        "success",
        {},
        {"status": "done"},
        {"status": "success"},  # no document
        {"status": "success", "document": {"id": "conn_1", "status": "error"}},  # does not meet the goal
    ],
)
def test_execute_complete_fails_closed(event: Any) -> None:
    with pytest.raises(PartnerOSFatalError):
        sensor().execute_complete({}, event)


def test_execute_complete_rechecks_synced_after() -> None:
    doc = {"id": "conn_1", "status": "active", "lastSyncAt": "2026-01-01T00:00:00.000Z"}
    with pytest.raises(PartnerOSFatalError, match="does not meet"):
        sensor(synced_after="2026-06-01T00:00:00Z").execute_complete(
            {}, {"status": "success", "document": doc}
        )


def test_execute_complete_maps_failures_errors_and_timeouts() -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout

    s = sensor()
    with pytest.raises(PartnerOSNotFoundError, match="answered 404"):
        s.execute_complete(
            {}, {"status": "failure", "error_class": "PartnerOSNotFoundError", "message": "answered 404"}
        )
    with pytest.raises(PartnerOSFatalError):  # a retryable class name on a failure event stays fatal
        s.execute_complete(
            {}, {"status": "failure", "error_class": "PartnerOSUnavailableError", "message": "x"}
        )
    with pytest.raises(PartnerOSUnavailableError):
        s.execute_complete(
            {}, {"status": "error", "error_class": "PartnerOSUnavailableError", "message": "503"}
        )
    with pytest.raises(PartnerOSError) as err:
        s.execute_complete({}, {"status": "error", "error_class": "os.system", "message": "odd"})
    assert err.value.retryable
    with pytest.raises(AirflowSensorTimeout):
        s.execute_complete({}, {"status": "timeout", "message": "Sensor has timed out"})


# --- evaluate ---------------------------------------------------------------------------------------


def doc(
    status: str = "active", last_sync: str | None = "2026-03-01T12:00:00.500Z", **more: Any
) -> dict[str, Any]:
    return {"id": "conn_1", "platform": "salesforce", "status": status, "lastSyncAt": last_sync, **more}


FAILS = ("error", "disconnected", "reauth_required")


@pytest.mark.parametrize(
    ("poke_interval", "error", "expected"),
    [
        pytest.param(60, None, 60, id="a-good-poll"),
        pytest.param(60, PartnerOSUnavailableError("502"), 60, id="a-5xx"),
        pytest.param(0.05, PartnerOSRateLimitedError("429", retry_after=7), 7, id="429-asks-longer"),
        pytest.param(60, PartnerOSRateLimitedError("429", retry_after=7), 60, id="429-asks-shorter"),
        pytest.param(60, PartnerOSRateLimitedError("429", retry_after=None), 60, id="429-no-header"),
        pytest.param(5, PartnerOSRateLimitedError("429", retry_after=86400), 120, id="429-a-day-capped"),
    ],
)
def test_next_poll_waits_at_least_what_a_rate_limit_asked(
    poke_interval: float, error: PartnerOSError | None, expected: float
) -> None:
    assert next_poll_delay(poke_interval, error) == expected


def test_evaluate_compares_milliseconds_and_time_zones() -> None:
    at = parse_synced_after("2026-03-01T12:00:00.500Z")
    assert evaluate(doc(), ["active"], FAILS, at).done  # equal counts as "at or after"
    assert not evaluate(doc(), ["active"], FAILS, parse_synced_after("2026-03-01T12:00:00.501Z")).done
    # 14:00:00.400 at +02:00 is 12:00:00.400Z: before the sync, so done.
    assert evaluate(doc(), ["active"], FAILS, parse_synced_after("2026-03-01T14:00:00.400+02:00")).done
    naive = dt.datetime(2026, 3, 1, 12, 0, 1)  # naive = UTC
    assert not evaluate(doc(), ["active"], FAILS, parse_synced_after(naive)).done
    verdict = evaluate(doc(last_sync=None), ["active"], FAILS, at)
    assert not verdict.done
    assert not verdict.failed
    assert "not synced" in verdict.message


@pytest.mark.parametrize("value", [None, "", "  ", "None", "null"])
def test_empty_synced_after_means_no_constraint(value: Any) -> None:
    assert parse_synced_after(value) is None


def test_synced_after_accepts_pendulum_and_date() -> None:
    import pendulum

    assert (
        parse_synced_after(pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"))
        .isoformat()
        .startswith("2026-01-01T00:00:00+01:00")
    )
    assert parse_synced_after(dt.date(2026, 1, 2)) == parse_synced_after("2026-01-02T00:00:00Z")


def test_evaluate_failure_message_says_what_to_do() -> None:
    verdict = evaluate(doc("reauth_required", lastErrorMessage="token revoked"), ["active"], FAILS, None)
    assert verdict.failed
    assert "token revoked" in verdict.message
    assert "Settings > Integrations" in verdict.message
    unknown = evaluate(doc("syncing"), ["active"], FAILS, None)
    assert not unknown.done
    assert not unknown.failed
    assert not evaluate(["not", "a", "dict"], ["active"], FAILS, None).done


def test_validate_arguments_order() -> None:
    cid, targets, failures, after = validate_arguments(" conn_1 ", ["active"], [], "2026-01-01")
    assert (cid, targets, failures) == ("conn_1", ("active",), ())
    assert after is not None
    assert after.isoformat() == "2026-01-01T00:00:00+00:00"


# --- DAG-parse cost ---------------------------------------------------------------------------------


def test_sensor_import_is_light() -> None:
    code = (
        "import sys, time; import airflow.sdk; t = time.perf_counter();"
        "from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor;"
        "ms = (time.perf_counter() - t) * 1000;"
        "heavy = [m for m in ('requests', 'airflow_provider_partneros.hooks.partneros',"
        " 'airflow_provider_partneros._sessions.async_transport', 'airflow.triggers.base')"
        " if m in sys.modules];"
        "print(ms, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    ms, heavy = out.stdout.strip().split(" ", 1)
    print(f"sensor import over airflow.sdk: {float(ms):.1f} ms (measured for real by `make bench`)")
    assert heavy == "[]"


# --- TLS ----------------------------------------------------------------------------------------------


def test_tls_verifies_against_the_connection_ca_bundle(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify=<CA path> works (and the __Secure- cookie round-trips); verify=true with an unknown CA is a
    fatal TLS failure even when SSL_CERT_FILE points at the right bundle (the explicit bundle wins)."""
    from airflow_provider_partneros.testing import make_self_signed

    files = make_self_signed(tmp_path)
    with PartnerOSStandIn(tls=files.server_context()) as srv:
        srv.seed_demo()
        monkeypatch.setenv(
            "AIRFLOW_CONN_PARTNEROS_DEFAULT", srv.connection_json(extra={"verify": files.ca_path})
        )
        assert run_one(connection_id=DEMO_SALESFORCE_CONNECTION)["status"] == "success"
        assert srv.sign_ins == srv.sign_outs == 1
        monkeypatch.setenv("SSL_CERT_FILE", files.ca_path)
        monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", srv.connection_json(extra={"verify": True}))
        event = run_one(connection_id=DEMO_SALESFORCE_CONNECTION)
        assert (event["status"], event["error_class"]) == ("failure", "PartnerOSTLSError")
