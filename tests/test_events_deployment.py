"""Event-driven scheduling in a real deployment: the example DAG scheduled on
``integration_synced_asset``, run by ``airflow standalone`` (scheduler, dag-processor, triggerer,
api-server), the stand-in in this test process. Runs and asset events are counted through the REST API.

Airflow 3.3+ only: it is about the asset state store keeping the watcher's mark across a triggerer
crash. (3.2 has no store; its baseline behaviour is shown by ``test_events.py``.) Slow: ``deployment``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import requests
from deployment_harness import AirflowDeployment
from packaging.version import Version

from airflow_provider_partneros.testing import DEMO_PASSWORD, PartnerOSStandIn
from airflow_provider_partneros.triggers.integration_synced import MARK_KEY

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(
        Version(version("apache-airflow")) < Version("3.3.0"),
        reason="needs Airflow 3.3's asset state store; the 3.2 behaviour is covered by test_events.py",
    ),
]

EXAMPLE = Path(__file__).resolve().parent.parent / "example_dags" / "partneros_on_integration_sync.py"
DAG_ID = "partneros_on_integration_sync"
CID = "conn_salesforce_demo"
STATUS_KEY = "GET /api/integrations/{id}/status"
T0 = "2026-11-30T08:00:00.000Z"
T1 = "2026-11-30T09:00:00.000Z"
T2 = "2026-11-30T10:00:00.000Z"
T3 = "2026-11-30T11:00:00.000Z"
T4 = "2026-11-30T12:00:00.000Z"


def example_dag_source() -> str:
    """The example DAG as shipped, polling every 2 s instead of 120 s."""
    source = EXAMPLE.read_text()
    assert source.count("poke_interval=120") == 1
    return source.replace("poke_interval=120", "poke_interval=2")


def wait_for(what: str, check: Callable[[], bool], airflow: AirflowDeployment, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):  # a busy SQLite-backed API server
            if check():
                return
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {timeout} s\n{airflow.output()}")


class Observed:
    """What a user sees through the REST API (and the mark in the metadata DB)."""

    def __init__(self, airflow: AirflowDeployment) -> None:
        self.airflow = airflow
        self._asset_id: int | None = None

    def asset_id(self) -> int:
        if self._asset_id is None:
            # partneros://<stand-in host>/<organization>/integrations/<id> (docs/events.md)
            assets = self.airflow.api("GET", "/assets", params={"uri_pattern": "partneros://"})["assets"]
            (asset,) = [a for a in assets if a["uri"].endswith(f"/_/integrations/{CID}")]
            self._asset_id = int(asset["id"])
        return self._asset_id

    def events(self) -> list[dict[str, Any]]:
        answer = self.airflow.api("GET", "/assets/events", params={"asset_id": self.asset_id(), "limit": 100})
        return list(answer["asset_events"])

    def runs(self) -> list[dict[str, Any]]:
        return list(self.airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"])

    def finished_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs() if r["state"] in ("success", "failed")]

    def mark(self) -> str | None:
        """The watcher's mark in the ``asset_state_store`` table (SQLite, read-only)."""
        db = f"file:{self.airflow.home / 'airflow.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(db, uri=True, timeout=10)) as conn:
            row = conn.execute("SELECT value FROM asset_state_store WHERE key = ?", (MARK_KEY,)).fetchone()
        return None if row is None else str(row[0])


def test_asset_scheduled_dag_runs_once_per_sync_across_a_triggerer_crash_and_a_reauth(
    standin: PartnerOSStandIn,
) -> None:
    standin.set_integration(CID, status="active", last_sync_at=T0)
    started = time.monotonic()
    env = {
        "AIRFLOW_CONN_PARTNEROS_DEFAULT": standin.connection_json(extra={"timeout": 10}),
        # A restarted triggerer takes over the crashed one's watchers once that one looks dead.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    }
    with AirflowDeployment(dags={"on_sync.py": example_dag_source()}, env=env) as airflow:
        healthy_after = airflow.wait_healthy()
        airflow.wait_for_dag(DAG_ID)
        print(f"healthy after {healthy_after:.0f} s, DAG parsed after {time.monotonic() - started:.0f} s")
        seen = Observed(airflow)
        # The watcher runs once the DAG is parsed and unpaused; its first poll is the baseline (T0).
        wait_for("watcher polling", lambda: standin.requests[STATUS_KEY] >= 2, airflow)
        wait_for("baseline stored", lambda: seen.mark() is not None and T0 in str(seen.mark()), airflow)
        assert seen.events() == [], "the sync before the watcher started is no news"
        assert seen.runs() == []
        print(f"watcher running after {time.monotonic() - started:.0f} s")

        # Two syncs: one asset event and one run each; each run sees its payload.
        for n, synced in enumerate((T1, T2), start=1):
            standin.set_integration(CID, last_sync_at=synced)
            wait_for(f"run {n} finished", lambda n=n: len(seen.finished_runs()) == n, airflow)  # type: ignore[misc]
            wait_for(f"mark {synced} saved", lambda s=synced: s in str(seen.mark()), airflow)  # type: ignore[misc]
        events = seen.events()
        assert [e["extra"]["payload"]["last_sync_at"] for e in events] == [T1, T2]
        runs = seen.runs()
        assert len(runs) == 2
        assert {r["run_type"] for r in runs} == {"asset_triggered"}
        assert {r["state"] for r in runs} == {"success"}
        for run, synced in zip(sorted(runs, key=lambda r: r["run_after"]), (T1, T2), strict=True):
            log = airflow.task_log(DAG_ID, run["dag_run_id"], "what_synced")
            assert f"salesforce integration {CID} synced at {synced}" in log, log[-2000:]
        print(f"two syncs, two runs after {time.monotonic() - started:.0f} s")

        # Triggerer crash and restart: the watcher starts from the top and reads its mark back, so the
        # two syncs are not reported again, and a sync made while the triggerer was down is, once.
        killed = airflow.kill_component("triggerer")
        assert len(killed) >= 2, "the triggerer and its trigger runner"
        polls_while_down = standin.requests[STATUS_KEY]
        standin.set_integration(CID, last_sync_at=T3)
        airflow.restart_component("triggerer")
        wait_for("run 3 finished", lambda: len(seen.finished_runs()) == 3, airflow, timeout=120)
        assert standin.requests[STATUS_KEY] > polls_while_down, "polled by the restarted triggerer"
        # The restarted watcher took its mark from Airflow's asset state store, not from a new baseline.
        assert f"last reported sync {T2} (from the asset state store)" in airflow.component_output(
            "triggerer"
        )
        wait_for(f"mark {T3} saved", lambda: T3 in str(seen.mark()), airflow)
        polls_before = standin.requests[STATUS_KEY]
        wait_for("more polls", lambda: standin.requests[STATUS_KEY] >= polls_before + 3, airflow)
        assert [e["extra"]["payload"]["last_sync_at"] for e in seen.events()] == [T1, T2, T3]
        assert len(seen.runs()) == 3, "no extra run after the restart"
        print(
            f"triggerer restarted, one run for the sync made while down; {time.monotonic() - started:.0f} s"
        )

        # reauth_required for a while: no run, no crash loop, no sign-in storm, and the log says what to do.
        sign_ins_before = standin.sign_in_attempts
        polls_before = standin.requests[STATUS_KEY]
        standin.set_integration(CID, status="reauth_required", last_sync_at=T4)
        wait_for(
            "polls while reauth_required", lambda: standin.requests[STATUS_KEY] >= polls_before + 5, airflow
        )
        assert len(seen.events()) == 3
        assert len(seen.runs()) == 3
        assert standin.sign_in_attempts - sign_ins_before <= 1
        restarted_log = airflow.component_output("triggerer")
        assert "'reauth_required'" in restarted_log
        assert "Reconnect it in PartnerOS (Settings > Integrations)" in restarted_log
        assert restarted_log.count("'reauth_required'") == 1, "said once, not once per poll"

        # Healthy again with that new sync: exactly one more run.
        standin.set_integration(CID, status="active")
        wait_for("run 4 finished", lambda: len(seen.finished_runs()) == 4, airflow)
        polls_before = standin.requests[STATUS_KEY]
        wait_for("more polls", lambda: standin.requests[STATUS_KEY] >= polls_before + 4, airflow)
        assert [e["extra"]["payload"]["last_sync_at"] for e in seen.events()] == [T1, T2, T3, T4]
        assert len(seen.runs()) == 4
        assert {r["state"] for r in seen.runs()} == {"success"}

        everything = airflow.output(tail=10**7) + airflow.component_output("triggerer")
        assert DEMO_PASSWORD not in everything
        print(f"deployment: total {time.monotonic() - started:.0f} s")
