"""Secret-leak audit (issue 5): the password and the session cookie never reach a user-visible place.

Tasks using the hook, every operator and the sensor in all three modes, succeeding and failing, run
against the stand-in; then every place a user (or anyone who can read the DAG run) can look is searched
for the password and for every session cookie the stand-in issued (URL-encoded, decoded, and the raw
token inside it): exception texts and tracebacks, XCom values, rendered template fields, trigger
kwargs, and log output.

Log output is checked three ways:

* under ``dag.test()``, where Airflow's masking is OFF: a secret in the output means the provider (or
  Airflow) wrote it in clear, so none may appear at all;
* in a subprocess with ``airflow.sdk.log.configure_logging()`` (masking ON in-process): the hook must
  have registered the password and the cookie with the masker, so even a deliberate log line with
  them comes out as ``***``;
* in a real deployment (``airflow standalone``, marked ``deployment``): every file under
  ``$AIRFLOW_HOME/logs`` (task logs, triggerer and scheduler logs) is grepped.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from airflow_provider_partneros.testing import (
    DEMO_APPLICATION_SLUG,
    DEMO_BROKEN_CONNECTION,
    DEMO_HUBSPOT_CONNECTION,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    Fault,
    PartnerOSStandIn,
)

CONN_ENV = "AIRFLOW_CONN_PARTNEROS_DEFAULT"
FAILURES: list[BaseException] = []
MIN_MASKABLE = 5  # Airflow never masks secrets shorter than this


def secrets_of(standin: PartnerOSStandIn) -> list[str]:
    """The password and every form of every session cookie the stand-in issued."""
    out = [DEMO_PASSWORD]
    for cookie in standin.issued_session_cookies:
        raw = unquote(cookie)
        token = raw.rpartition(".")[0]
        out += [cookie, raw, token]
    assert all(len(s) >= MIN_MASKABLE for s in out), "secrets this short are never masked"
    return out


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which secrets occur in ``text`` (shown by length only, never by value)."""
    return [f"<secret #{i}, {len(s)} chars>" for i, s in enumerate(secrets) if s in text]


def test_demo_secrets_are_long_enough_to_be_masked(standin: PartnerOSStandIn) -> None:
    import requests

    requests.post(
        standin.base_url + "/api/auth/sign-in/email",
        json={"email": "demo@partneros.test", "password": DEMO_PASSWORD},
        timeout=5,
    )
    secrets = secrets_of(standin)
    assert len(secrets) == 4


# --- the audit DAG ---------------------------------------------------------------------------------------


def _record_failures(dag: Any) -> Any:
    """Note the exception that ends each task's try, whatever the operator.

    ``on_failure_callback`` would do, but Airflow 3.2's ``dag.test()`` does not run it in-process.
    Each task becomes an instance of a subclass of its own class that records what its entry points
    raise (the task runner renders templates on a copy, so the class, not the instance, must change).
    """
    for op in dag.tasks:
        op.__class__ = _recording_class(type(op))
    return dag


@functools.cache
def _recording_class(cls: type) -> type:
    from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred

    def record(call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except (TaskDeferred, AirflowRescheduleException):
            raise
        except BaseException as err:
            FAILURES.append(err)
            raise

    class Recording(cls):  # type: ignore[valid-type,misc]
        def execute(self, context: Any) -> Any:
            return record(super().execute, context)

        def resume_execution(self, next_method: str, next_kwargs: Any, context: Any) -> Any:
            return record(super().resume_execution, next_method, next_kwargs, context)

    Recording.__name__ = Recording.__qualname__ = cls.__name__
    return Recording


def audit_dag(dag_id: str) -> Any:
    from airflow.sdk import DAG, task

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook
    from airflow_provider_partneros.operators.partneros import (
        AnalyzePartnerOperator,
        GenerateIcpOperator,
        GetIntegrationSchemaOperator,
        PartnerOSApiOperator,
        SubmitPartnerApplicationOperator,
    )
    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    common: dict[str, Any] = {"retries": 0}
    sensor: dict[str, Any] = {**common, "poke_interval": 0.1, "timeout": 30}
    with DAG(
        dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False
    ) as dag:

        @task(task_id="hook_calls", **common)
        def hook_calls() -> dict[str, Any]:
            with PartnerOSHook() as hook:
                status = hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
                hook.analyze_partner("partner-2")
                # A task returning the hook's session document: its token must already be redacted.
                return {"status": status["status"], "session": hook.get_session_info()}

        @task(task_id="hook_fails", **common)
        def hook_fails() -> None:
            with PartnerOSHook() as hook:
                hook.get_integration_status("no-such-integration")

        hook_calls()
        hook_fails()
        # get-session answers with the session token: the operator must redact it before XCom.
        PartnerOSApiOperator(task_id="api_get_session", endpoint="/api/auth/get-session", **common)
        PartnerOSApiOperator(
            task_id="api_templated",
            endpoint="/api/integrations/{{ params.cid }}/status",
            query={"x": "{{ params.cid }}"},
            params={"cid": DEMO_SALESFORCE_CONNECTION},
            **common,
        )
        AnalyzePartnerOperator(task_id="analyze", partner_id="partner-1", **common)
        AnalyzePartnerOperator(task_id="analyze_fails", partner_id="no-such-partner", **common)
        GetIntegrationSchemaOperator(
            task_id="schema", connection_id=DEMO_SALESFORCE_CONNECTION, object_type="Account", **common
        )
        GetIntegrationSchemaOperator(task_id="schema_502", connection_id=DEMO_HUBSPOT_CONNECTION, **common)
        GenerateIcpOperator(task_id="icp", company="{{ 'acme.example' }}", **common)
        SubmitPartnerApplicationOperator(
            task_id="submit",
            slug=DEMO_APPLICATION_SLUG,
            form_data={"company": "Acme", "email": "partners@acme.example"},
            agreements={"terms": True},
            **common,
        )
        for mode in ("poke", "reschedule", "deferrable"):
            mode_args: dict[str, Any] = (
                {"deferrable": True} if mode == "deferrable" else {"mode": mode, "deferrable": False}
            )
            IntegrationStatusSensor(
                task_id=f"sensor_{mode}", connection_id=DEMO_SALESFORCE_CONNECTION, **mode_args, **sensor
            )
            IntegrationStatusSensor(
                task_id=f"sensor_{mode}_fails", connection_id=DEMO_BROKEN_CONNECTION, **mode_args, **sensor
            )
    return _record_failures(dag)


EXPECTED_STATES = {
    "hook_calls": "success",
    "hook_fails": "failed",
    "api_get_session": "success",
    "api_templated": "success",
    "analyze": "success",
    "analyze_fails": "failed",
    "schema": "success",
    "schema_502": "failed",
    "icp": "success",
    "submit": "success",
    "sensor_poke": "success",
    "sensor_poke_fails": "failed",
    "sensor_reschedule": "success",
    "sensor_reschedule_fails": "failed",
    "sensor_deferrable": "success",
    "sensor_deferrable_fails": "failed",
}


def _rendered_fields(dag_id: str) -> list[Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.dag_id == dag_id)
        ).all()
        return [(r.task_id, r.rendered_fields) for r in rows]


def _trigger_rows() -> list[Any]:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [(t.classpath, t.kwargs) for t in session.scalars(select(Trigger)).all()]


@pytest.mark.airflow_run
def test_no_secret_in_exceptions_xcom_rendered_fields_trigger_kwargs_or_output(
    run_dag: Any,
    standin: PartnerOSStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        CONN_ENV, standin.connection_json(extra={"timeout": 5, "retry_backoff": 0.01, "max_retries": 1})
    )
    standin.inject(Fault.html_bad_gateway(f"/api/integrations/{DEMO_HUBSPOT_CONNECTION}/schema", times=None))
    FAILURES.clear()

    result = run_dag(audit_dag("secrets_audit"))
    output = capfd.readouterr()

    assert {task_id: r.state for task_id, r in result.tasks.items()} == EXPECTED_STATES, FAILURES
    secrets = secrets_of(standin)
    assert len(standin.issued_session_cookies) >= 10  # the audit really saw many sessions

    # Exception texts, including their tracebacks and chained causes.
    assert len(FAILURES) == sum(1 for s in EXPECTED_STATES.values() if s == "failed")
    for exc in FAILURES:
        text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.__dict__)
        context = exc.__context__
        while context is not None:
            text += repr(context) + "".join(traceback.format_exception(context))
            context = context.__context__
        assert not leaks(text, secrets), f"{type(exc).__name__} carries a secret"

    # XCom values: the get-session answer's token is redacted by the operator.
    for task_id, r in result.tasks.items():
        assert not leaks(json.dumps(r.xcom, default=str), secrets), f"XCom of {task_id}"
    session_doc = result["api_get_session"].xcom
    assert session_doc["session"]["token"] == "***"
    assert result["hook_calls"].xcom["session"]["session"]["token"] == "***"

    # Rendered template fields (what the UI's "Rendered Template" tab shows).
    rendered = _rendered_fields("secrets_audit")
    assert rendered, "no rendered fields were stored"
    assert not leaks(json.dumps(rendered, default=str), secrets)

    # Trigger kwargs as stored for the triggerer, and as the sensor builds them.
    assert not leaks(json.dumps(_trigger_rows(), default=str), secrets)

    # Log output, with masking OFF: nothing may print a secret in clear.
    assert "Signed out of PartnerOS" in output.out + output.err  # the task logs were captured
    assert not leaks(output.out + output.err, secrets), "a secret was printed in clear"

    # Every session was signed out.
    assert standin.sign_ins == standin.sign_outs
    assert standin.active_sessions == 0


def test_trigger_serialize_holds_no_secret(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger

    monkeypatch.setenv(CONN_ENV, standin.connection_json())
    trigger = IntegrationStatusTrigger(
        DEMO_SALESFORCE_CONNECTION, synced_after="2026-01-01T00:00:00Z", timeout_at="2030-01-01T00:00:00Z"
    )
    _classpath, kwargs = trigger.serialize()
    dumped = json.dumps(kwargs)
    assert DEMO_PASSWORD not in dumped
    assert set(kwargs) >= {"connection_id", "partneros_conn_id"}
    assert not any("password" in k or "cookie" in k or "token" in k for k in kwargs)


# --- masking ON in-process ---------------------------------------------------------------------------------

_MASKING_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from airflow.sdk.log import configure_logging
    configure_logging()
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook
    from airflow_provider_partneros.exceptions import PartnerOSError
    hook = PartnerOSHook()
    hook.get_integration_status(sys.argv[1])
    cookies = [c.value for c in hook.get_conn().cookies]
    password = hook.settings.password
    # Deliberate canaries: the hook registered both with the masker, so these must come out as ***.
    hook.log.info("canary password=%s", password)
    for cookie in cookies:
        hook.log.info("canary cookie=%s", cookie)
    try:
        hook.get_integration_status("no-such-integration")
    except PartnerOSError as err:
        hook.log.exception("the task failed: %s", err)
    hook.close()
    print(json.dumps({"cookies": cookies}), file=sys.stderr)
    """
)


def test_masking_on_in_process_hides_password_and_cookie(standin: PartnerOSStandIn, tmp_path: Path) -> None:
    env = {**os.environ, CONN_ENV: standin.connection_json(extra={"timeout": 5})}
    env["AIRFLOW_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _MASKING_SCRIPT, DEMO_SALESFORCE_CONNECTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    *log_lines, cookies_line = proc.stderr.rstrip().splitlines()
    logged = proc.stdout + "\n".join(log_lines)
    assert json.loads(cookies_line)["cookies"], "the hook kept no session cookie"
    assert "canary password=***" in logged
    assert "canary cookie=***" in logged
    assert not leaks(logged, secrets_of(standin))
    assert standin.sign_ins == standin.sign_outs == 1


# --- a real deployment: masking ON, task/triggerer logs on disk ---------------------------------------------

DEPLOY_DAG_ID = "partneros_secrets_audit"
DEPLOY_DAG = textwrap.dedent(
    f'''
    """Secret-leak audit DAG (written by tests/test_secrets.py)."""
    import logging
    from datetime import datetime, timezone

    from airflow.sdk import DAG, task

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook
    from airflow_provider_partneros.operators.partneros import (
        AnalyzePartnerOperator,
        GenerateIcpOperator,
        GetIntegrationSchemaOperator,
        PartnerOSApiOperator,
        SubmitPartnerApplicationOperator,
    )
    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    common = {{"retries": 0}}
    sensor = {{**common, "poke_interval": 1, "timeout": 60}}

    with DAG("{DEPLOY_DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
             catchup=False):

        @task(**common)
        def hook_canary():
            # Deliberately logs the secrets: masking must turn every one into ***.
            with PartnerOSHook() as hook:
                hook.get_integration_status("{DEMO_SALESFORCE_CONNECTION}")
                log = logging.getLogger("airflow.task")
                log.info("canary password=%s", hook.settings.password)
                for cookie in hook.get_conn().cookies:
                    log.info("canary cookie=%s", cookie.value)
                print("canary print password=" + hook.settings.password)
                return "ok"

        @task(**common)
        def hook_fails():
            with PartnerOSHook() as hook:
                hook.get_integration_status("no-such-integration")

        hook_canary()
        hook_fails()
        PartnerOSApiOperator(task_id="api_get_session", endpoint="/api/auth/get-session", **common)
        AnalyzePartnerOperator(task_id="analyze", partner_id="partner-1", **common)
        AnalyzePartnerOperator(task_id="analyze_fails", partner_id="no-such-partner", **common)
        GetIntegrationSchemaOperator(task_id="schema", connection_id="{DEMO_SALESFORCE_CONNECTION}", **common)
        GenerateIcpOperator(task_id="icp", company="acme.example", **common)
        SubmitPartnerApplicationOperator(
            task_id="submit", slug="{DEMO_APPLICATION_SLUG}",
            form_data={{"company": "Acme", "email": "p@acme.example"}},
            agreements={{"terms": True}}, **common,
        )
        for mode in ("poke", "reschedule", "deferrable"):
            args = {{"deferrable": True}} if mode == "deferrable" else {{"mode": mode, "deferrable": False}}
            IntegrationStatusSensor(task_id=f"sensor_{{mode}}",
                                    connection_id="{DEMO_SALESFORCE_CONNECTION}", **args, **sensor)
            IntegrationStatusSensor(task_id=f"sensor_{{mode}}_fails",
                                    connection_id="{DEMO_BROKEN_CONNECTION}", **args, **sensor)
    '''
)
DEPLOY_EXPECTED = {
    "hook_canary": "success",
    "hook_fails": "failed",
    "api_get_session": "success",
    "analyze": "success",
    "analyze_fails": "failed",
    "schema": "success",
    "icp": "success",
    "submit": "success",
    "sensor_poke": "success",
    "sensor_poke_fails": "failed",
    "sensor_reschedule": "success",
    "sensor_reschedule_fails": "failed",
    "sensor_deferrable": "success",
    "sensor_deferrable_fails": "failed",
}


@pytest.mark.deployment
def test_no_secret_in_any_log_file_of_a_real_deployment(standin: PartnerOSStandIn) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from deployment_harness import AirflowDeployment, wait_signed_out

    # ~16 tasks sign in at once under a real scheduler: with the 3-per-10-s limiter on, one can
    # outlast its in-call retries and fail with a rate limit (seen once in CI). This test is about
    # masking, so the limiter is off here; rate limiting is covered in test_faults.py.
    standin.sign_in_rate_limit = None
    env = {CONN_ENV: standin.connection_json(extra={"timeout": 10, "retry_backoff": 0.1})}
    with AirflowDeployment(dags={"secrets_audit.py": DEPLOY_DAG}, env=env) as airflow:
        airflow.wait_healthy()
        airflow.wait_for_dag(DEPLOY_DAG_ID)
        run_id = airflow.trigger(DEPLOY_DAG_ID)
        state = airflow.wait_for_run(DEPLOY_DAG_ID, run_id, timeout=240)
        tis = airflow.task_instances(DEPLOY_DAG_ID, run_id)
        canary_log = airflow.task_log(DEPLOY_DAG_ID, run_id, "hook_canary")
        logs = sorted(p for p in (airflow.home / "logs").rglob("*") if p.is_file())
        texts = {str(p): p.read_text(errors="replace") for p in logs}
        console = airflow.output(tail=10_000_000)
        xcoms = {
            task_id: airflow.api(
                "GET", f"/dags/{DEPLOY_DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries"
            )
            for task_id, ti in tis.items()
            if ti.get("state") == "success"
        }
    assert state == "failed"  # some tasks fail on purpose
    assert {t: ti.get("state") for t, ti in tis.items()} == DEPLOY_EXPECTED
    secrets = secrets_of(standin)
    assert len(logs) >= len(DEPLOY_EXPECTED)
    # The canaries were logged and masked, so the masker knows both secrets.
    assert "canary password=***" in canary_log
    assert "canary cookie=***" in canary_log
    for path, text in texts.items():
        assert not leaks(text, secrets), f"a secret is in {path}"
    assert not leaks(json.dumps(xcoms, default=str), secrets)
    # `airflow standalone`'s console echoes task log lines UNMASKED (an Airflow behaviour: the canaries
    # show up there in clear). The provider's own lines must not carry a secret even there.
    provider_lines = [line for line in console.splitlines() if "canary" not in line]
    assert provider_lines
    assert not leaks("\n".join(provider_lines), secrets), "the provider printed a secret in clear"
    wait_signed_out(standin)  # the host's steward signs the shared session out once unused
    assert standin.sign_ins == standin.sign_outs
    assert standin.active_sessions == 0
