"""``on_kill`` in a real deployment: a batch of 200 partners marked failed through the REST API while it
runs (``airflow standalone``, LocalExecutor, the stand-in in this test process).

Airflow's supervisor learns of the new state at its next heartbeat and sends the task SIGTERM, whose
handler calls ``on_kill``. The operator logs the moment (its "Task killed" line), which is what "after
the kill" is measured against. Slow (about 1.5 min): marked ``deployment``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import textwrap
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version

import pytest
from deployment_harness import AirflowDeployment, wait_signed_out
from packaging.version import Version

from airflow_provider_partneros.testing import DEMO_ORG_ID, PartnerOSStandIn

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(
        Version(version("apache-airflow")) < Version("3.3.0"),
        reason="keeping the done partners for the retry needs Airflow 3.3's task_state_store",
    ),
]

DAG_ID = "partneros_killed_batch"
N = 200
IDS = [f"killed-{i:03d}" for i in range(N)]
ANALYZE = "/api/partners/{id}/analyze"
TIMEOUT = 5.0
DAG_SOURCE = textwrap.dedent(
    f'''
    """A batch that the test kills (written by tests/test_on_kill_deployment.py)."""
    from datetime import datetime, timezone

    from airflow.sdk import DAG

    from airflow_provider_partneros.operators import BatchAnalyzePartnersOperator

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=False):
        BatchAnalyzePartnersOperator(task_id="batch", partner_ids={IDS!r}, max_concurrency=4)
    '''
)
KILLED = "Task killed: no further PartnerOS call"


def wait_for(what: str, check: Callable[[], bool], airflow: AirflowDeployment, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a busy SQLite-backed API server: ask again
            if check():
                return
        time.sleep(0.3)
    raise TimeoutError(f"{what}: not within {timeout} s\n{airflow.output()}")


def killed_at(airflow: AirflowDeployment, run_id: str) -> float | None:
    """When ``on_kill`` ran: the time of the operator's "Task killed" line in the task log (JSON lines)."""
    for line in airflow.task_log(DAG_ID, run_id, "batch").splitlines():
        if KILLED in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                stamp = str(json.loads(line)["timestamp"])
                return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return None


def last_line_of_try_1(airflow: AirflowDeployment, run_id: str) -> float:
    """When the killed try's task process wrote its last log line (it exits right after)."""
    stamps = []
    for line in airflow.task_log(DAG_ID, run_id, "batch").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            record = json.loads(line)
            if record.get("try_number") == 1:
                stamps.append(
                    datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()
                )
    return max(stamps)


def analyzed(standin: PartnerOSStandIn) -> list[object]:
    return [r for r in standin.request_log if r.route == ANALYZE]


def stored_partners(airflow: AirflowDeployment) -> int:
    """Partners the batch keeps for its retry (the task_state_store index, read-only from SQLite)."""
    db = f"file:{airflow.home / 'airflow.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(db, uri=True, timeout=10)) as conn:
        row = conn.execute(
            "SELECT value FROM task_state_store WHERE key = ?", ("partneros_analyze_partners",)
        ).fetchone()
    return 0 if row is None else int(json.loads(row[0])["partners"])


def test_batch_marked_failed_stops_at_once_keeps_its_work_and_the_retry_does_the_rest(
    standin: PartnerOSStandIn,
) -> None:
    for pid in IDS:
        standin.add_partner(pid, organization=DEMO_ORG_ID, name=pid.title(), domain=f"{pid}.example")
    standin.analyze_delay = 0.3  # 200 partners, 4 at a time: ~15 s if nothing stops it
    env = {"AIRFLOW_CONN_PARTNEROS_DEFAULT": standin.connection_json(extra={"timeout": TIMEOUT})}
    with AirflowDeployment(dags={"killed_batch.py": DAG_SOURCE}, env=env) as airflow:
        airflow.wait_healthy()
        airflow.wait_for_dag(DAG_ID)
        run_id = airflow.trigger(DAG_ID)
        wait_for("40 partners enriched", lambda: len(analyzed(standin)) >= 40, airflow)

        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/batch"
        airflow.api("PATCH", path, json={"new_state": "failed"})
        wait_for("the task's kill logged", lambda: killed_at(airflow, run_id) is not None, airflow)
        killed = killed_at(airflow, run_id)
        assert killed is not None

        # In flight at the kill: done within the timeout. Nothing started after it. The try ends.
        time.sleep(TIMEOUT + 3)
        ended = last_line_of_try_1(airflow, run_id)
        assert ended - killed < TIMEOUT + 3
        assert all(r.status is not None for r in analyzed(standin)), "a call still in flight"
        late = [r.path for r in analyzed(standin) if r.time > killed + 0.2]
        assert late == []
        done = {r.path.split("/")[3] for r in analyzed(standin) if r.status == 200}
        assert 40 <= len(done) < N
        wait_for("the done partners kept", lambda: stored_partners(airflow) == len(done), airflow, timeout=30)

        # The session is released by on_kill and signed out after its linger (2 s here).
        wait_signed_out(standin, timeout=30)
        assert standin.active_sessions == 0
        assert standin.sign_outs >= 1

        # The retry (clearing the task) enriches only the partners not done.
        before = len(standin.request_log)
        airflow.api(
            "POST",
            f"/dags/{DAG_ID}/clearTaskInstances",
            json={"dry_run": False, "task_ids": ["batch"], "dag_run_id": run_id, "reset_dag_runs": True},
        )
        assert airflow.wait_for_run(DAG_ID, run_id, timeout=120) == "success"
        retried = [r.path.split("/")[3] for r in standin.request_log[before:] if r.route == ANALYZE]
        assert sorted(retried) == sorted(set(IDS) - done)
        print(f"killed after {len(done)} of {N}; try 1 ended {ended - killed:.1f} s after on_kill")
