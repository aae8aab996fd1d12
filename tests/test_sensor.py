"""IntegrationStatusSensor in real Airflow (``dag.test()``): one scenario matrix over poke, reschedule and
deferrable modes, against the PartnerOS stand-in over loopback HTTP.

Every scenario asserts the outcome (state, XCom, tries), how many sign-ins the mode needed, and that
nothing stays signed in afterwards. Reschedule mode signs in once per poke and the stand-in keeps the
real sign-in rate limit (3 per 10 s), so scenarios stay within 3 pokes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from standin_helpers import on_status_call

from airflow_provider_partneros.testing import DEMO_ORG_ID, Fault, PartnerOSStandIn

pytestmark = pytest.mark.airflow_run

CID = "conn_gate_test"
STATUS_ROUTE = "/api/integrations/*/status"
MODES = ("poke", "reschedule", "deferrable")
FAILURES: list[BaseException] = []


def iso_ms(when: dt.datetime) -> str:
    """The API's timestamp form: milliseconds and ``Z``."""
    return (
        when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


@pytest.fixture
def conn(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    """``partneros_default`` pointing at the stand-in, with fast in-call retries."""
    extra = {"timeout": 5, "retry_backoff": 0.05, "max_retries": 2}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    standin.add_integration(CID, organization=DEMO_ORG_ID, status="disconnected")
    FAILURES.clear()
    return "partneros_default"


def status_polls(standin: PartnerOSStandIn) -> int:
    return standin.requests["GET /api/integrations/{id}/status"]


def _recording_sensor() -> type:
    """The real sensor, noting the exception that ends a try (the failure a user reads in the log).

    ``on_failure_callback`` would do, but Airflow 3.2's ``dag.test()`` does not run it in-process.
    """
    from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred

    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    class RecordingSensor(IntegrationStatusSensor):
        def execute(self, context: Any) -> Any:
            return self._recording(super().execute, context)

        def resume_execution(self, next_method: str, next_kwargs: Any, context: Any) -> Any:
            return self._recording(super().resume_execution, next_method, next_kwargs, context)

        @staticmethod
        def _recording(call: Callable[..., Any], *args: Any) -> Any:
            try:
                return call(*args)
            except (TaskDeferred, AirflowRescheduleException):
                raise
            except BaseException as err:
                FAILURES.append(err)
                raise

    return RecordingSensor


def make_dag(
    dag_id: str, mode: str, *, dag_params: dict[str, Any] | None = None, **sensor_kwargs: Any
) -> Any:
    from airflow.sdk import DAG

    kwargs: dict[str, Any] = {
        "task_id": "gate",
        "connection_id": CID,
        "poke_interval": 0.1,
        "timeout": 30,
        "retries": 1,
        "retry_delay": dt.timedelta(0),
    }
    kwargs.update(sensor_kwargs)
    if mode == "deferrable":
        kwargs["deferrable"] = True
    else:
        kwargs.update(mode=mode, deferrable=False)
    with DAG(
        f"{dag_id}_{mode}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        params=dag_params or {},
    ) as dag:
        _recording_sensor()(**kwargs)
    return dag


@dataclass
class Expect:
    state: str
    sign_ins: dict[str, int | tuple[int, ...]]
    xcom_status: str | None = None
    failure_text: tuple[str, ...] = ()
    failure_type: str | None = None
    expired_sessions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def check(standin: PartnerOSStandIn, result: Any, mode: str, expect: Expect) -> None:
    gate = result["gate"]
    assert gate.state == expect.state, (gate, FAILURES)
    assert gate.try_number == 1, "a failure or skip must not use the task's retry"
    if expect.xcom_status is not None:
        assert isinstance(gate.xcom, dict)
        assert gate.xcom["status"] == expect.xcom_status
        assert gate.xcom["id"] == CID
    if expect.failure_text or expect.failure_type:
        assert FAILURES, "the sensor ended without an exception"
        err = FAILURES[-1]
        for text in expect.failure_text:
            assert text in str(err), (text, str(err))
        if expect.failure_type:
            assert type(err).__name__ == expect.failure_type, repr(err)
    wanted = expect.sign_ins[mode]
    assert standin.sign_ins in (wanted if isinstance(wanted, tuple) else (wanted,)), (mode, standin.sign_ins)
    # Nothing stays signed in: every session was signed out, except those the server expired itself.
    assert standin.sign_outs == standin.sign_ins - expect.expired_sessions
    assert standin.active_sessions == 0
    assert all(r.status != 429 for r in standin.request_log), "the sign-in rate limit was hit"


# --- the matrix ----------------------------------------------------------------------------------------


def scenario_active_after_polls(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """Disconnected, disconnected, then active: success on the third poll."""
    standin.script_integration(
        CID, [{"status": "disconnected"}, {"status": "disconnected"}, {"status": "active"}]
    )
    return (
        {"failure_statuses": ["reauth_required"]},
        Expect("success", {"poke": 1, "reschedule": 3, "deferrable": 1}, xcom_status="active"),
    )


def scenario_synced_too_early(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """Active throughout, but lastSyncAt reaches ``synced_after`` (a template) only on the third poll."""
    since = dt.datetime.now(dt.timezone.utc).replace(microsecond=123000)
    old, new = iso_ms(since - dt.timedelta(hours=1)), iso_ms(since)
    standin.script_integration(
        CID,
        [
            {"status": "active", "lastSyncAt": old},
            {"status": "active", "lastSyncAt": None},
            {"status": "active", "lastSyncAt": new},
        ],
    )
    return (
        {"synced_after": "{{ params.since }}", "params": {"since": since.isoformat()}},
        Expect(
            "success",
            {"poke": 1, "reschedule": 3, "deferrable": 1},
            xcom_status="active",
            extra={"last_sync": new},
        ),
    )


def scenario_reauth_required(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """Waiting, then reauth_required: fails at once, no retry, says what to do."""
    standin.script_integration(
        CID,
        [
            {"status": "disconnected"},
            {"status": "reauth_required", "lastErrorMessage": "Refresh token revoked by Salesforce admin"},
        ],
    )
    return (
        {"failure_statuses": ["reauth_required"]},
        Expect(
            "failed",
            {"poke": 1, "reschedule": 2, "deferrable": 1},
            failure_text=(
                "reauth_required",
                "Refresh token revoked by Salesforce admin",
                "Settings > Integrations",
            ),
            failure_type="PartnerOSIntegrationFailedError",
        ),
    )


def scenario_error_message(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """An ``error`` status fails with the integration's lastErrorMessage."""
    standin.set_integration(CID, status="error", last_error_message="INVALID_FIELD: No such column 'Foo__c'")
    return (
        {},
        Expect(
            "failed",
            {"poke": 1, "reschedule": 1, "deferrable": 1},
            failure_text=("'error'", "INVALID_FIELD: No such column 'Foo__c'"),
            failure_type="PartnerOSIntegrationFailedError",
        ),
    )


def scenario_timeout(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """Never gets there: the sensor's timeout fails it (no retry) in every mode."""
    return (
        {"failure_statuses": [], "timeout": 1.5, "poke_interval": 0.4},
        Expect(
            "failed",
            {"poke": 1, "reschedule": (2, 3), "deferrable": 1},
            failure_text=("timed out",),
            failure_type="AirflowSensorTimeout",
        ),
    )


def scenario_soft_fail(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """soft_fail turns a failure status into a skip."""
    standin.script_integration(CID, [{"status": "disconnected"}, {"status": "reauth_required"}])
    return (
        {"failure_statuses": ["reauth_required"], "soft_fail": True},
        Expect("skipped", {"poke": 1, "reschedule": 2, "deferrable": 1}),
    )


def scenario_soft_fail_timeout(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """soft_fail turns a timeout into a skip too."""
    return (
        {"failure_statuses": [], "timeout": 1.0, "poke_interval": 0.4, "soft_fail": True},
        Expect("skipped", {"poke": 1, "reschedule": 2, "deferrable": 1}),
    )


def scenario_session_expires(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """The session expires server-side mid-wait: exactly one re-sign-in, then success."""
    standin.script_integration(CID, [{"status": "disconnected"}, {"status": "active"}])

    def expire(req: Any) -> None:
        standin.expire_sessions()
        req.session = None  # this very request already looked its session up

    on_status_call(standin, 2, expire)
    # reschedule: poke 1 signs in; poke 2 signs in, meets the 401 and signs in once more.
    return (
        {"failure_statuses": ["reauth_required"]},
        Expect(
            "success", {"poke": 2, "reschedule": 3, "deferrable": 2}, xcom_status="active", expired_sessions=1
        ),
    )


def scenario_5xx_burst(standin: PartnerOSStandIn) -> tuple[dict[str, Any], Expect]:
    """Three 503s mid-wait outlast one poll's in-call retries; the next poll succeeds."""
    standin.script_integration(CID, [{"status": "disconnected"}, {"status": "active"}])
    on_status_call(
        standin, 1, lambda req: standin.inject(Fault.html_service_unavailable(STATUS_ROUTE, times=3))
    )
    return (
        {"failure_statuses": ["reauth_required"]},
        Expect("success", {"poke": 1, "reschedule": 3, "deferrable": 1}, xcom_status="active"),
    )


SCENARIOS = {
    "active_after_polls": scenario_active_after_polls,
    "synced_too_early": scenario_synced_too_early,
    "reauth_required": scenario_reauth_required,
    "error_message": scenario_error_message,
    "timeout": scenario_timeout,
    "soft_fail": scenario_soft_fail,
    "soft_fail_timeout": scenario_soft_fail_timeout,
    "session_expires": scenario_session_expires,
    "5xx_burst": scenario_5xx_burst,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_matrix(
    scenario: str, mode: str, standin: PartnerOSStandIn, conn: str, run_dag: Callable[..., Any]
) -> None:
    kwargs, expect = SCENARIOS[scenario](standin)
    dag = make_dag(f"gate_{scenario}", mode, dag_params=kwargs.pop("params", None), **kwargs)
    started = time.monotonic()
    result = run_dag(dag)
    elapsed = time.monotonic() - started
    check(standin, result, mode, expect)
    if "last_sync" in expect.extra:
        assert result["gate"].xcom["lastSyncAt"] == expect.extra["last_sync"]
    if scenario in ("timeout", "soft_fail_timeout"):
        assert elapsed < 15, f"timeout not honoured promptly ({elapsed:.1f} s)"
    if scenario == "5xx_burst":
        assert status_polls(standin) >= 3 + 2


# --- beyond the matrix ----------------------------------------------------------------------------------


def test_unknown_connection_fails_at_once_in_every_mode(
    standin: PartnerOSStandIn, conn: str, run_dag: Callable[..., Any]
) -> None:
    for mode in MODES:
        FAILURES.clear()
        dag = make_dag("gate_unknown", mode, connection_id="conn_does_not_exist")
        result = run_dag(dag)
        assert result["gate"].state == "failed"
        assert result["gate"].try_number == 1
        assert type(FAILURES[-1]).__name__ == "PartnerOSNotFoundError", repr(FAILURES[-1])
    assert standin.sign_ins == standin.sign_outs == 3


def test_template_rendering_none_means_no_sync_constraint(
    standin: PartnerOSStandIn, conn: str, run_dag: Callable[..., Any]
) -> None:
    """A template with no value renders "None" (e.g. ``{{ data_interval_end }}`` of a REST-triggered run
    with no logical date): no sync constraint, and success. (``dag.test()`` sets a data interval.)"""
    standin.set_integration(
        CID, status="active", last_sync_at=iso_ms(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    )
    dag = make_dag("gate_manual", "poke", synced_after="{{ params.since }}", dag_params={"since": None})
    result = run_dag(dag)
    assert result["gate"].state == "success"
    assert result["gate"].xcom["status"] == "active"


def test_bad_template_value_fails_at_task_start_without_http(
    standin: PartnerOSStandIn, conn: str, run_dag: Callable[..., Any]
) -> None:
    dag = make_dag("gate_badtemplate", "poke", synced_after="{{ 'last tuesday-ish' }}")
    result = run_dag(dag)
    assert result["gate"].state == "failed"
    assert result["gate"].try_number == 1
    assert type(FAILURES[-1]).__name__ == "PartnerOSConfigError"
    assert "synced_after" in str(FAILURES[-1])
    assert standin.sign_in_attempts == 0


# --- a rate limit that outlasts the in-call retries ---------------------------------------------------


class _FirstTry:
    """What reschedule mode asks of the task instance: no earlier reschedule, so this is the first."""

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_rate_limited_poke_delays_the_next_poke_as_the_server_asked(
    mode: str, standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch, mocker: Any
) -> None:
    """A 429 beyond the in-call retries: the next poke comes after the server's delay, not poke_interval."""
    import airflow.sdk.bases.sensor as base_sensor
    from airflow.sdk.exceptions import AirflowRescheduleException

    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    extra = {"timeout": 5, "max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    standin.add_integration(CID, organization=DEMO_ORG_ID, status="active")
    standin.inject(Fault.rate_limited(30, "/api/integrations/*/status"))
    # The clock seam: the sensor loop's sleep is recorded, not slept (only in Airflow's sensor module).
    pauses: list[float] = []
    mocker.patch.object(base_sensor, "time", mocker.Mock(monotonic=time.monotonic, sleep=pauses.append))
    sensor = IntegrationStatusSensor(
        task_id="gate", connection_id=CID, mode=mode, poke_interval=1, timeout=600, deferrable=False
    )

    if mode == "poke":
        assert sensor.execute({})["status"] == "active"  # the second poke
        assert pauses == [30]
    else:
        before = dt.datetime.now(dt.timezone.utc)
        with pytest.raises(AirflowRescheduleException) as rescheduled:
            sensor.execute({"ti": _FirstTry()})
        assert rescheduled.value.reschedule_date >= before + dt.timedelta(seconds=30)
    assert standin.sign_ins == standin.sign_outs == 1
