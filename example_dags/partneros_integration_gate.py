"""Gate the partner sync on the Salesforce integration: healthy, and synced since the interval ended.

``IntegrationStatusSensor`` waits (deferred: in the triggerer, not in a worker slot) until the CRM
connection is ``active``; for scheduled runs it also waits until ``lastSyncAt`` is at or after the
run's ``data_interval_end``. It fails at once, loudly, if the integration needs re-authorization
(``reauth_required``), is ``disconnected`` or in ``error`` -- instead of waiting out the timeout.

Manual runs (and ``dag.test()``/``make demo``) get an empty ``synced_after``: no sync constraint, and
the task log says so. The connection id is the stand-in's demo Salesforce integration; use your own
``conn_...`` id against the real service. Parsing this file imports nothing heavy and needs no network.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

with DAG(
    dag_id="partneros_integration_gate",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["partneros", "example"],
    doc_md=__doc__,
) as dag:
    salesforce_ready = IntegrationStatusSensor(
        task_id="salesforce_ready",
        connection_id="conn_salesforce_demo",
        # Scheduled runs: synced since this run's interval ended. Manual runs: no constraint.
        synced_after="{{ data_interval_end if dag_run.run_type == 'scheduled' else '' }}",
        deferrable=True,
        poke_interval=dt.timedelta(minutes=2),
        timeout=dt.timedelta(hours=3),
    )

    @task
    def partner_sync(status: dict[str, object]) -> str:
        """The downstream work; it only starts once the gate opened, and gets the status document."""
        return f"syncing partners from {status['platform']} (last sync {status['lastSyncAt']})"

    partner_sync(salesforce_ready.output)
