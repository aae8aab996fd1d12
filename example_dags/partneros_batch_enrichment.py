"""Batch enrichment: many partners in ONE task, a few enrichments in flight at a time.

The batch twin of the mapped ``analyze_partner`` task in ``partneros_partner_pipeline``:

1. ``partners_to_enrich`` decides which partners to enrich (here: the DAG params; in practice a query)
   and returns their ids (an XCom list).
2. ``enrich_partners`` (``BatchAnalyzePartnersOperator``) enriches all of them in one task through one
   PartnerOS session, ``max_concurrency`` at a time. A 429 pauses the whole batch for the server's
   delay; a 5xx is retried per partner. If some partners fail, the task fails after all the others are
   done, its XCom still maps every partner to its enrichment or its error, and a retry enriches only
   the partners that failed (Airflow 3.3+).
3. ``report`` reads that mapping: who was enriched into which industry.

Map when each partner must be its own UI row, retry and log; batch when the list is long: one task
costs one process instead of one per partner (see docs/operators.md, "When to map and when to batch").
Runs against the real service or the built-in stand-in (``make demo``) with ``partneros_default``.
Parsing this file makes no network call.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partneros.operators import BatchAnalyzePartnersOperator

with DAG(
    dag_id="partneros_batch_enrichment",
    description="Enrich a list of partners in one batch task with bounded concurrency.",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["partneros", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    params={"partner_ids": ["partner-1", "partner-2", "partner-3", "partner-4", "partner-5"]},
) as dag:

    @task
    def partners_to_enrich(params: dict[str, Any] | None = None) -> list[str]:
        """The partners to enrich in this run, as one list of ids."""
        assert params is not None
        return [str(partner_id) for partner_id in params["partner_ids"]]

    enrich = BatchAnalyzePartnersOperator(
        task_id="enrich_partners",
        partner_ids=partners_to_enrich(),
        # Eight enrichments in flight through one session; the AI backend does the waiting.
        max_concurrency=8,
        execution_timeout=timedelta(minutes=30),
    )

    @task
    def report(outcome: dict[str, Any]) -> dict[str, str | None]:
        """Each partner's industry. Runs only when every partner was enriched (the default trigger
        rule); a failed batch still leaves its per-partner errors in ``enrich_partners``'s XCom."""
        industries = {pid: value["partner"].get("industry") for pid, value in outcome.items()}
        print(f"Enriched {len(industries)} partners: {industries}")
        return industries

    report(enrich.output)
