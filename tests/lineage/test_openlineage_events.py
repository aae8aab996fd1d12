"""OpenLineage from real task runs: the datasets of each task's COMPLETE event, and no secret anywhere.

Runs ``tests/lineage_dag.py`` with ``dag.test()`` and the OpenLineage provider's own listener, which
writes every event to a file (tests/lineage/conftest.py); then reads the events as a consumer would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from lineage_dag import BATCH, DAG_ID, check_outcome, lineage_dag, use_standin

from airflow_provider_partneros.lineage import API_CALL_FACET, MAX_PARTNER_DATASETS, operator_lineage
from airflow_provider_partneros.testing import (
    DEMO_ORG_ID,
    DEMO_PARTNER_IDS,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    PartnerOSStandIn,
)

pytestmark = pytest.mark.lineage
INTEGRATION = f"{DEMO_ORG_ID}/integrations/{DEMO_SALESFORCE_CONNECTION}"


@dataclass
class Run:
    result: Any
    events: list[dict[str, Any]]
    namespace: str
    cookies: list[str]


_RUNS: list[Run] = []


@pytest.fixture
def run(run_dag: Any, standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch, events_file: Path) -> Run:
    """One run of the lineage DAG and every event it emitted; made once, then shared by the tests
    (each run costs ~12 s of task processes and event emission)."""
    if not _RUNS:
        use_standin(standin, monkeypatch)
        result = run_dag(lineage_dag())
        events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
        namespace = f"partneros://{urlsplit(standin.base_url).netloc}"
        _RUNS.append(Run(result, events, namespace, [c for c in standin.issued_session_cookies if c]))
    return _RUNS[0]


def complete(events: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    (event,) = [
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{DAG_ID}.{task_id}"
    ]
    return event


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def test_the_run_succeeds_exactly_as_without_openlineage(run: Run) -> None:
    check_outcome(run.result)
    assert run.events  # and the provider did emit


def test_sensor_reads_the_integration_with_its_platform_and_instance_url(run: Run) -> None:
    event = complete(run.events, "integration_ready")
    assert names(event["inputs"]) == [(run.namespace, INTEGRATION)]
    assert event["outputs"] == []
    source = event["inputs"][0]["facets"]["dataSource"]
    assert source["name"] == "salesforce"
    assert source["uri"] == run.result["integration_ready"].xcom["instanceUrl"]


def test_schema_operator_reads_the_same_integration(run: Run) -> None:
    event = complete(run.events, "schema")
    assert names(event["inputs"]) == [(run.namespace, INTEGRATION)]
    assert event["outputs"] == []


def test_analyze_outputs_the_partner_record(run: Run) -> None:
    event = complete(run.events, "analyze_one")
    assert names(event["outputs"]) == [(run.namespace, f"{DEMO_ORG_ID}/partners/{DEMO_PARTNER_IDS[0]}")]


def test_batch_outputs_one_dataset_per_partner(run: Run) -> None:
    event = complete(run.events, "analyze_batch")
    assert names(event["outputs"]) == [(run.namespace, f"{DEMO_ORG_ID}/partners/{pid}") for pid in BATCH]


def test_icp_outputs_the_profile_document(run: Run) -> None:
    event = complete(run.events, "icp")
    assert names(event["outputs"]) == [(run.namespace, f"{DEMO_ORG_ID}/icp/acme%20consulting")]


def test_generic_call_reports_method_and_path_as_a_job_facet(run: Run) -> None:
    facet = complete(run.events, "raw_call")["job"]["facets"][API_CALL_FACET]
    assert (facet["method"], facet["path"]) == (
        "GET",
        f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/status",
    )


def test_no_event_carries_the_password_or_a_session_cookie(run: Run) -> None:
    text = json.dumps(run.events)
    cookies = run.cookies
    assert cookies  # the run did sign in
    assert DEMO_PASSWORD not in text
    assert not [c for c in cookies if c in text]
    assert "cookie" not in text.lower()


def test_batch_reports_at_most_the_documented_number_of_partners(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_standin(standin, monkeypatch)
    from airflow_provider_partneros.operators import BatchAnalyzePartnersOperator

    ids = [f"p-{n}" for n in range(MAX_PARTNER_DATASETS + 50)]
    lineage = operator_lineage(BatchAnalyzePartnersOperator(task_id="big", partner_ids=ids))
    assert [d.name for d in lineage.outputs] == [f"{DEMO_ORG_ID}/partners/{pid}" for pid in ids[:100]]


def test_asset_converter_names_the_integration_as_the_sensor_does(run: Run) -> None:
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    from airflow_provider_partneros.triggers.integration_synced import integration_synced_asset

    asset = integration_synced_asset(  # the run's stand-in is gone: name its host explicitly
        DEMO_SALESFORCE_CONNECTION, host=run.namespace.split("://")[1], organization=DEMO_ORG_ID
    )
    dataset = translate_airflow_asset(asset, None)  # through Airflow's registry, as the listener does
    sensor_input = complete(run.events, "integration_ready")["inputs"][0]
    assert dataset is not None
    assert (dataset.namespace, dataset.name) == (sensor_input["namespace"], sensor_input["name"])
