"""Run each time the Salesforce integration finishes a new sync: event-driven, no sensor, no schedule.

The DAG is scheduled on an asset whose watcher (``IntegrationSyncedTrigger``) runs in the triggerer,
polls the integration's status every ``poke_interval`` seconds and turns each new ``lastSyncAt`` of a
healthy (``active``) integration into one asset event, hence one run. The run reads what synced from
``triggering_asset_events``. See docs/events.md for the delivery guarantees on Airflow 3.2 and 3.3.

``make demo`` runs it in a real deployment: the stand-in's integration syncs and the run it causes
is shown. A manual run has no triggering event and says so. The connection id is the stand-in's demo
Salesforce integration; use your own ``conn_...`` id against the real service. The asset is named by
the PartnerOS host and organization, read at parse from the ``partneros_default`` connection (no
request to PartnerOS; pass ``host=`` and ``organization=`` to read nothing, see docs/events.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_partneros.triggers.integration_synced import integration_synced_asset

SALESFORCE_SYNCED = integration_synced_asset("conn_salesforce_demo", poke_interval=120)

with DAG(
    dag_id="partneros_on_integration_sync",
    schedule=[SALESFORCE_SYNCED],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["partneros", "example", "event-driven"],
    doc_md=__doc__,
) as dag:

    @task
    def what_synced(triggering_asset_events: Any = None) -> list[str]:
        """One line per sync event that started this run (usually one; more if runs queued up)."""
        events = triggering_asset_events[SALESFORCE_SYNCED] if triggering_asset_events else []
        lines = []
        for event in events:
            sync = event.extra.get("payload", {})
            lines.append(
                f"{sync.get('platform')} integration {sync.get('connection_id')} synced at "
                f"{sync.get('last_sync_at')} (previous sync {sync.get('previous_sync_at')})"
            )
        if not lines:
            lines.append("no sync event: a manual run")
        for line in lines:
            print(line)
        return lines

    what_synced()
