"""Quickstart: sign in once, read a CRM integration's health, and enrich a partner.

Runs against the real service or the built-in stand-in (``make demo``). Uses the
``partneros_default`` connection; both tasks sign in once and sign out when they finish.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="partneros_quickstart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["partneros", "example"],
    params={"integration_id": "conn_salesforce_demo", "partner_id": "partner-1"},
)
def partneros_quickstart() -> None:
    @task
    def integration_health(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_partneros.hooks.partneros import PartnerOSHook

        assert params is not None
        with PartnerOSHook("partneros_default") as hook:
            status = hook.get_integration_status(params["integration_id"])
        print(f"{status['platform']} integration {status['id']} is {status['status']}")
        return {"id": status["id"], "status": status["status"], "lastSyncAt": status.get("lastSyncAt")}

    @task
    def enrich_partner(health: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_partneros.hooks.partneros import PartnerOSHook

        assert params is not None
        if health["status"] != "active":
            raise ValueError(f"integration {health['id']} is {health['status']}; not enriching partners")
        with PartnerOSHook("partneros_default") as hook:
            result = hook.analyze_partner(params["partner_id"])
        partner = result["partner"]
        return {key: partner.get(key) for key in ("id", "industry", "regions")}

    enrich_partner(integration_health())


partneros_quickstart()
