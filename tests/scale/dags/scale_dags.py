"""The DAGs of the scale-out scenarios (tests/scale): parsed by the environment's dag-processor.

- ``scale_fanout``: ``AnalyzePartnerOperator`` mapped over 100 partners; ``params.conn_id`` picks the
  connection (``partneros_default`` shares a session per host, ``partneros_per_task`` signs in per task).
- ``scale_sensors`` (50) and ``scale_failover`` (20): deferrable ``IntegrationStatusSensor``s on one
  connection, waiting for a sync at or after ``params.synced_after``.
- ``scale_worker_kill``: one task with ``retries=1`` that signs in, analyses a partner and, on its
  first try, then waits to be killed; it records which host ran each try in a marker file.
- ``scale_each_worker``: one PartnerOS call on each worker host (Celery queue ``w1`` / ``w2``).
  Both use ``partneros_short_lived`` (``session_max_age`` 15 s).
- ``scale_on_sync``: event-driven, one run per new sync of ``conn_scale_watched`` (an
  ``IntegrationSyncedTrigger`` watcher, polling every 2 s, in one of the two triggerers).
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_partneros.operators.partneros import AnalyzePartnerOperator
from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor
from airflow_provider_partneros.triggers.integration_synced import integration_synced_asset

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
FANOUT_PARTNERS = [f"scale-partner-{i:03d}" for i in range(100)]
SENSOR_COUNTS = {"scale_sensors": ("conn_salesforce_demo", 50), "scale_failover": ("conn_hubspot_demo", 20)}

with DAG(
    "scale_fanout",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"conn_id": Param("partneros_default", type="string")},
    tags=["scale"],
):
    AnalyzePartnerOperator.partial(
        task_id="analyze", partneros_conn_id="{{ params.conn_id }}", retries=0
    ).expand(partner_id=FANOUT_PARTNERS)

for dag_id, (integration, count) in SENSOR_COUNTS.items():
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        params={"synced_after": Param("", type="string")},
        tags=["scale"],
    ):
        IntegrationStatusSensor.partial(
            task_id="wait",
            synced_after="{{ params.synced_after }}",
            deferrable=True,
            poke_interval=2,
            timeout=900,
            retries=0,
        ).expand(connection_id=[integration] * count)


with DAG("scale_worker_kill", schedule=None, start_date=START, catchup=False, tags=["scale"]):

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def hold(**context: Any) -> str:
        """Sign in and call PartnerOS; the first try then blocks until its worker is SIGKILLed."""
        from airflow_provider_partneros.hooks.partneros import PartnerOSHook

        ti = context["ti"]
        safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
        marker = Path(os.environ["SCALE_MARKER_DIR"]) / f"{safe_run}.try{ti.try_number}"
        host = os.environ["SCALE_HOST"]
        with PartnerOSHook("partneros_short_lived") as hook:  # session_max_age 15 s
            hook.analyze_partner("partner-1")
            marker.write_text(host)
            if ti.try_number == 1:
                time.sleep(600)  # the test kills this worker here
        return host

    hold()


with DAG("scale_each_worker", schedule=None, start_date=START, catchup=False, tags=["scale"]):
    for worker in ("w1", "w2"):

        @task(task_id=f"on_{worker}", queue=worker)
        def on_host() -> str:
            """One call from this host (its worker alone listens on the queue named after it)."""
            from airflow_provider_partneros.hooks.partneros import PartnerOSHook

            with PartnerOSHook("partneros_short_lived") as hook:
                hook.analyze_partner("partner-2")
            return os.environ["SCALE_HOST"]

        on_host()


# Every host reaches the stand-in through a forwarder of its own (its own base URL), and the
# dag-processor has no PartnerOS connection at all: so the asset names its data source explicitly
# instead of reading a connection at parse (docs/events.md).
WATCHED_SYNCED = integration_synced_asset(
    "conn_scale_watched", poke_interval=2, host="partneros.scale.test", organization="org-demo"
)

with DAG("scale_on_sync", schedule=[WATCHED_SYNCED], start_date=START, catchup=False, tags=["scale"]):

    @task
    def synced(triggering_asset_events: Any = None) -> list[str]:
        """The lastSyncAt of each sync event that started this run."""
        events = triggering_asset_events[WATCHED_SYNCED] if triggering_asset_events else []
        return [str(event.extra.get("payload", {}).get("last_sync_at")) for event in events]

    synced()
