"""The deferrable sensor out of process: a real scheduler, triggerer, dag-processor and api-server
(``airflow standalone``), a run triggered through the REST API, the stand-in in this test process.

Slow (about a minute): marked ``deployment``. The harness lives in ``tests/deployment_harness.py``.
"""

from __future__ import annotations

import textwrap
import time

import pytest
from deployment_harness import AirflowDeployment

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
        assert standin.sign_outs == 1
        # The password never reaches the task log in clear (masking is on in real runs).
        assert "demo-Passw0rd!" not in log
        total = time.monotonic() - started
        print(f"deployment: healthy after {healthy_after:.1f} s, run finished, total {total:.1f} s")
