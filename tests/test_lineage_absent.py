"""Without the OpenLineage provider (the dev venv): the lineage DAG runs exactly as with it, and nothing
of OpenLineage (nor the provider's lineage module) is imported by DAG parsing or by a task run."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

import pytest
from lineage_dag import check_outcome, lineage_dag, use_standin

from airflow_provider_partneros.testing import PartnerOSStandIn


def _has_openlineage() -> bool:
    try:
        distribution("apache-airflow-providers-openlineage")
    except PackageNotFoundError:
        return False
    return True


pytestmark = pytest.mark.skipif(_has_openlineage(), reason="the OpenLineage provider is installed here")


@pytest.mark.airflow_run
def test_lineage_dag_runs_with_identical_results_without_openlineage(
    run_dag: Any, standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_standin(standin, monkeypatch)
    check_outcome(run_dag(lineage_dag("partneros_lineage_without_openlineage")))
    assert not [name for name in sys.modules if name.startswith("openlineage")]


def test_dag_parse_imports_no_lineage_code() -> None:
    """What a DAG file imports stays what it was: the facet methods import lineage code when called."""
    code = (
        "import sys\n"
        "import airflow_provider_partneros.operators, airflow_provider_partneros.sensors.integration\n"
        "import airflow_provider_partneros.triggers.integration_synced\n"
        "loaded = [m for m in sys.modules if m.startswith(('openlineage', 'airflow.providers.openlineage',"
        " 'airflow_provider_partneros.lineage'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
