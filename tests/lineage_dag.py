"""The DAG the lineage tests run twice: with the OpenLineage provider (tests/lineage) and without it
(tests/test_lineage_absent.py). Both check its outcome with :func:`check_outcome`, so the two runs are
held to identical results."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_partneros.operators import (
    AnalyzePartnerOperator,
    BatchAnalyzePartnersOperator,
    GenerateIcpOperator,
    GetIntegrationSchemaOperator,
    PartnerOSApiOperator,
)
from airflow_provider_partneros.sensors import IntegrationStatusSensor
from airflow_provider_partneros.testing import (
    DEMO_ORG_ID,
    DEMO_PARTNER_IDS,
    DEMO_SALESFORCE_CONNECTION,
    PartnerOSStandIn,
)

DAG_ID = "partneros_lineage"
BATCH = list(DEMO_PARTNER_IDS[:3])
COMPANY = "Acme Consulting"
TASKS = ("integration_ready", "schema", "analyze_one", "analyze_batch", "icp", "raw_call")


def use_standin(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """``partneros_default`` on the stand-in, with the organization set (so names carry it)."""
    extra = {"organization_id": DEMO_ORG_ID, "timeout": 10}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))


def lineage_dag(dag_id: str = DAG_ID) -> DAG:
    with DAG(
        dag_id, schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=False
    ) as dag:
        ready = IntegrationStatusSensor(
            task_id="integration_ready", connection_id=DEMO_SALESFORCE_CONNECTION, poke_interval=1, timeout=30
        )
        schema = GetIntegrationSchemaOperator(
            task_id="schema", connection_id=DEMO_SALESFORCE_CONNECTION, object_type="Account"
        )
        one = AnalyzePartnerOperator(task_id="analyze_one", partner_id=DEMO_PARTNER_IDS[0])
        batch = BatchAnalyzePartnersOperator(task_id="analyze_batch", partner_ids=BATCH)
        icp = GenerateIcpOperator(task_id="icp", company=COMPANY)
        raw = PartnerOSApiOperator(
            task_id="raw_call", endpoint=f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/status?x=1"
        )
        ready >> [schema, one, batch, icp, raw]
    return dag


def check_outcome(result: Any) -> None:
    """What the run must produce, with or without OpenLineage."""
    assert result.state == "success"
    for task_id in TASKS:
        assert result[task_id].state == "success", task_id
        assert result[task_id].try_number == 1, task_id
    assert result["integration_ready"].xcom["platform"] == "salesforce"
    assert result["analyze_one"].xcom["partner"]["id"] == DEMO_PARTNER_IDS[0]
    assert sorted(result["analyze_batch"].xcom) == sorted(BATCH)
    assert {"industry", "verticals"} <= set(result["icp"].xcom)
    assert result["raw_call"].xcom["id"] == DEMO_SALESFORCE_CONNECTION
