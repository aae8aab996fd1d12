"""The deferrable sensor out of process: a real scheduler, triggerer, dag-processor and api-server
(``airflow standalone``), a run triggered through the REST API, the stand-in in this test process.

Slow (about a minute): marked ``deployment``. The harness lives in ``tests/deployment_harness.py``.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from deployment_harness import AirflowDeployment, wait_signed_out

from airflow_provider_partneros.testing import DEMO_ORG_ID, PartnerOSStandIn

pytestmark = pytest.mark.deployment

DAG_ID = "partneros_deployment_gate"
CID = "conn_deployment_gate"
DAG_SOURCE = textwrap.dedent(
    f'''
    """Gate a task on a deferrable IntegrationStatusSensor (written by tests/test_deployment.py)."""
    from datetime import datetime, timezone

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=False):
        gate = IntegrationStatusSensor(
            task_id="gate",
            connection_id="{CID}",
            failure_statuses=["reauth_required"],
            deferrable=True,
            poke_interval=5,
            timeout=120,
        )
        gate >> EmptyOperator(task_id="after")
    '''
)


def test_deferrable_sensor_runs_in_a_real_triggerer(standin: PartnerOSStandIn) -> None:
    standin.add_integration(CID, organization=DEMO_ORG_ID, status="disconnected")
    # Three polls, 5 s apart: the trigger really waits in the triggerer. Not faster on purpose: when a
    # trigger fires before the deferring worker process has exited (seconds on a busy machine), Airflow
    # 3.3's scheduler can take that process's late "success" executor event for the resumed try and
    # fail the task ("finished with state success, but the task instance's state attribute is queued").
    standin.script_integration(
        CID, [{"status": "disconnected"}, {"status": "disconnected"}, {"status": "active"}]
    )
    started = time.monotonic()
    env = {"AIRFLOW_CONN_PARTNEROS_DEFAULT": standin.connection_json(extra={"timeout": 10})}
    with AirflowDeployment(dags={"gate_dag.py": DAG_SOURCE}, env=env) as airflow:
        healthy_after = airflow.wait_healthy()
        airflow.wait_for_dag(DAG_ID)
        run_id = airflow.trigger(DAG_ID)
        seen: set[str] = set()
        state = airflow.wait_for_run(DAG_ID, run_id, timeout=120, seen_states=seen)
        tis = airflow.task_instances(DAG_ID, run_id)
        log = airflow.task_log(DAG_ID, run_id, "gate")
        assert state == "success", (tis, airflow.output())
        assert tis["gate"]["state"] == "success"
        assert tis["after"]["state"] == "success"
        assert tis["gate"]["try_number"] == 1
        # It went through the triggerer: the shared async session (only the trigger has one) signed in,
        # polled three times and the task resumed from the trigger's event.
        assert "shared session" in log, log[-3000:]
        assert "Done after 3 polls" in log, log[-3000:]
        assert "gate:deferred" in seen or "deferred" in log.lower(), seen
        assert standin.requests["GET /api/integrations/{id}/status"] == 3
        assert standin.sign_ins == 1
        wait_signed_out(standin)  # the host's steward, once the session was unused for the linger
        assert standin.sign_outs == 1
        # The password never reaches the task log in clear (masking is on in real runs).
        assert "demo-Passw0rd!" not in log
        total = time.monotonic() - started
        print(f"deployment: healthy after {healthy_after:.1f} s, run finished, total {total:.1f} s")


FANOUT_DAG_ID = "partneros_deployment_fanout"
FANOUT_PARTNERS = [f"fanout-{n:03d}" for n in range(50)]
FANOUT_SOURCE = textwrap.dedent(
    f'''
    """50 mapped AnalyzePartnerOperator tasks at once (written by tests/test_deployment.py)."""
    from datetime import datetime, timezone

    from airflow.sdk import DAG

    from airflow_provider_partneros.operators import AnalyzePartnerOperator

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with DAG("{FANOUT_DAG_ID}", schedule=None, start_date=start, catchup=False):
        AnalyzePartnerOperator.partial(task_id="enrich").expand(partner_id={FANOUT_PARTNERS!r})
    '''
)


def test_fifty_mapped_tasks_on_local_executor_share_the_hosts_session(
    standin: PartnerOSStandIn, tmp_path: Path
) -> None:
    """A real scheduler running 32 task processes at once: before the host-wide store, every one of
    them signed in and most failed on the sign-in limit (3 per 10 s per IP)."""
    for n, partner_id in enumerate(FANOUT_PARTNERS):
        standin.add_partner(
            partner_id, organization=DEMO_ORG_ID, name=f"Fanout {n}", domain=f"fanout{n}.example"
        )
    store = tmp_path / "sessions"
    env = {
        "AIRFLOW_CONN_PARTNEROS_DEFAULT": standin.connection_json(extra={"timeout": 30}),
        "AIRFLOW__PARTNEROS__SESSION_DIR": str(store),
        "AIRFLOW__CORE__PARALLELISM": "32",
        # Longer than the scheduler's gaps between tasks (the harness's 2 s default is not).
        "AIRFLOW__PARTNEROS__SESSION_LINGER": "10",
    }
    with AirflowDeployment(dags={"fanout_dag.py": FANOUT_SOURCE}, env=env) as airflow:
        airflow.wait_healthy()
        airflow.wait_for_dag(FANOUT_DAG_ID)
        started = time.monotonic()
        run_id = airflow.trigger(FANOUT_DAG_ID)
        state = airflow.wait_for_run(FANOUT_DAG_ID, run_id, timeout=600)
        took = time.monotonic() - started
        answer = airflow.api(
            "GET", f"/dags/{FANOUT_DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )
        tis = answer["task_instances"]

    states = sorted(str(ti["state"]) for ti in tis)
    print(
        f"fan-out: 50 mapped tasks, parallelism 32: {state} in {took:.0f} s; {standin.sign_ins} sign-ins, "
        f"{standin.sign_in_rate_limited} x 429, {standin.sign_outs} sign-outs"
    )
    assert state == "success", states
    assert states == ["success"] * 50
    assert standin.requests["POST /api/partners/{id}/analyze"] == 50
    assert standin.sign_in_rate_limited == 0
    # One sign-in for the whole fan-out: tasks that overlap share the session, and between two that
    # do not, it lingers unused for the next one.
    assert standin.sign_ins == 1
    # Then the host's steward signs it out, once it has been unused for the linger time.
    wait_signed_out(standin)
    assert standin.active_sessions == 0
    assert standin.sign_outs == 1
