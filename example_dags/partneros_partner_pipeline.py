"""Partner pipeline: wait for the CRM integration, enrich partners, build an ICP, read the CRM schema.

What a partnerships team runs weekly:

1. ``wait_for_crm`` holds everything until the Salesforce integration is ``active`` (fails at once on
   ``error`` / ``disconnected`` / ``reauth_required``; reschedule mode frees the worker slot between pokes).
2. ``partner_batch`` decides which partners to enrich (here: the DAG params; in practice a query), and
   ``analyze_partner`` enriches each one in its own mapped task (``.expand``): one failure or retry
   touches one partner only.
3. ``generate_icp`` asks PartnerOS AI for the Ideal Customer Profile of the company (uses AI quota;
   HTTP 402 fails the task without retries).
4. ``crm_account_schema`` reads the cached Salesforce ``Account`` field schema, e.g. to plan field mappings.
5. ``summarize`` joins it all into one small JSON report in XCom.

Every PartnerOS task signs in once and signs out when it ends. PartnerOS limits sign-ins to 3 per 10 s per
client IP; the hook waits out that limit by itself, so a big batch runs slower, never fails for it.
Runs against the real service or the built-in stand-in (``make demo``) with the ``partneros_default``
connection. Parsing this file makes no network call.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partneros.operators import (
    AnalyzePartnerOperator,
    GenerateIcpOperator,
    GetIntegrationSchemaOperator,
)
from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

with DAG(
    dag_id="partneros_partner_pipeline",
    description="Enrich partners, generate an ICP and read the CRM schema once the CRM is healthy.",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["partneros", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "crm_connection_id": "conn_salesforce_demo",
        "partner_ids": ["partner-1", "partner-2", "partner-3", "partner-4", "partner-5"],
        "company": "acme-consulting.example",
    },
) as dag:
    wait_for_crm = IntegrationStatusSensor(
        task_id="wait_for_crm",
        connection_id="{{ params.crm_connection_id }}",
        mode="reschedule",
        poke_interval=300,
        timeout=6 * 3600,
    )

    @task
    def partner_batch(params: dict[str, Any] | None = None) -> list[str]:
        """The partners to enrich in this run (a list of ids, one mapped task each)."""
        assert params is not None
        return [str(partner_id) for partner_id in params["partner_ids"]]

    batch = partner_batch()

    analyses = AnalyzePartnerOperator.partial(
        task_id="analyze_partner",
        # Enrichment can take many seconds per partner; a few at a time keeps the AI backend and the
        # sign-in rate limit comfortable.
        max_active_tis_per_dagrun=3,
        execution_timeout=timedelta(minutes=10),
    ).expand(partner_id=batch)

    icp = GenerateIcpOperator(task_id="generate_icp", company="{{ params.company }}")

    account_schema = GetIntegrationSchemaOperator(
        task_id="crm_account_schema",
        connection_id="{{ params.crm_connection_id }}",
        object_type="Account",
    )

    @task
    def summarize(analyses: list[dict[str, Any]], icp: dict[str, Any], account_schema: Any) -> dict[str, Any]:
        """One small report: who was enriched into which industry, the ICP headline, the schema size."""
        partners = [
            {
                "id": result["partner"].get("id"),
                "name": result["partner"].get("name"),
                "industry": result["partner"].get("industry"),
            }
            # Indexing (not iterating) reads exactly len() mapped results, without probing past the end.
            for result in (analyses[i] for i in range(len(analyses)))
        ]
        fields = account_schema.get("fields") if isinstance(account_schema, dict) else None
        report = {
            "partners_enriched": len(partners),
            "partners": partners,
            "icp": {key: icp.get(key) for key in ("industry", "verticals", "companySize")},
            "account_fields": len(fields) if isinstance(fields, list) else None,
        }
        print(f"Enriched {len(partners)} partners; ICP industry: {icp.get('industry')}")
        return report

    wait_for_crm >> [batch, icp, account_schema]
    summarize(analyses.output, icp.output, account_schema.output)
