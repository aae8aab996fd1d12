"""OpenLineage for every PartnerOS operator and the sensor, in one place (docs/lineage.md).

The operators' ``get_openlineage_facets_on_start/_on_complete`` are one line each, calling
:func:`operator_lineage`; what a task reports is decided here from the task's own arguments, so a
renamed or moved operator keeps its lineage. Datasets are named exactly like the ``partneros://``
assets (:mod:`airflow_provider_partneros.assets`): namespace ``partneros://<host>``, name
``<organization>/<kind>/<id>``.

The OpenLineage provider stays optional: this module imports it (and ``openlineage-python``) only inside
the functions that provider calls, so without it nothing more is imported at DAG parse or task run.
No credential, cookie or answer body enters a facet: only ids from the task's arguments, the host and
organization of its connection, and the integration's platform and ``instanceUrl``.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_partneros.assets import (
    ACTIVE_ORGANIZATION,
    DEFAULT_HOST,
    asset_uri,
    host_of,
    openlineage_names,
)

MAX_PARTNER_DATASETS = 100
"""A batch task reports at most this many partners (the first ones, in the order given): a lineage
event per task must stay small enough for every consumer, and 100 nodes is already past readable."""
API_CALL_FACET = "partneros_api_call"
"""Job facet key of :class:`~airflow_provider_partneros.operators.PartnerOSApiOperator` (method, path)."""


def data_source(partneros_conn_id: Any) -> tuple[str, str | None]:
    """``(host, organization)`` of an Airflow connection: read from the connection only, no request.

    The organization is the connection's ``organization_id``; ``None`` when it sets none (the session's
    active organization, which only a request could tell). An unreadable connection gives the default
    host: lineage must never be the reason a task fails.
    """
    from airflow_provider_partneros._connection.settings import read_airflow_connection

    try:
        settings = read_airflow_connection(partneros_conn_id)
        return host_of(settings.base_url), settings.organization_id
    except Exception:
        return DEFAULT_HOST, None


def dataset_names(kind: str, object_id: str, *, host: str, organization: str | None) -> tuple[str, str]:
    """``(namespace, name)`` of one PartnerOS object: the names its ``partneros://`` asset converts to."""
    return openlineage_names(asset_uri(kind, object_id, organization=organization, host=host))


def operator_lineage(task: Any, *, document: Mapping[str, Any] | None = None) -> Any:
    """The ``OperatorLineage`` of a PartnerOS task, from its (rendered) arguments.

    ``document``: an integration status document the task read (platform, ``instanceUrl``).
    What each kind of task reports: docs/lineage.md.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    conn_id = getattr(task, "partneros_conn_id", None)
    if hasattr(task, "partner_ids"):  # the batch operator
        host, org = data_source(conn_id)
        ids = _unique_strings(task.partner_ids)[:MAX_PARTNER_DATASETS]
        return OperatorLineage(outputs=[_dataset("partners", pid, host, org) for pid in ids])
    if hasattr(task, "partner_id"):
        host, org = data_source(conn_id)
        return OperatorLineage(outputs=_maybe(lambda: [_dataset("partners", task.partner_id, host, org)]))
    if hasattr(task, "company"):
        host, org = data_source(conn_id)
        outputs = _maybe(lambda: [_dataset("icp", company_key(task.company), host, org)])
        path = getattr(task, "output_path", None)
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).strip():
            outputs.append(_file_dataset(os.fspath(path)))
        return OperatorLineage(outputs=outputs)
    if hasattr(task, "connection_id"):  # the sensor and the schema operator read the integration
        host, org = data_source(conn_id)
        inputs = _maybe(lambda: [_dataset("integrations", task.connection_id, host, org, document)])
        return OperatorLineage(inputs=inputs)
    if hasattr(task, "endpoint"):
        return OperatorLineage(job_facets=_api_call_facets(task.method, task.endpoint))
    if hasattr(task, "slug"):  # a public form: the call is the lineage, the form's owner is not known
        return OperatorLineage(job_facets=_api_call_facets("POST", "/api/partners/applications/submit"))
    return OperatorLineage()


def company_key(company: str) -> str:
    """The ICP document's id: the company name or domain as given, trimmed and case-folded."""
    return " ".join(company.split()).casefold()


# --- building blocks ----------------------------------------------------------------------------------


def _unique_strings(values: Any) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        return []
    return list(dict.fromkeys(v.strip() for v in values if isinstance(v, str) and v.strip()))


def _maybe(build: Any) -> list[Any]:
    """A dataset list, or none when an argument is not a usable id (an unrendered template, ...)."""
    try:
        return list(build())
    except (ValueError, TypeError, AttributeError):
        return []


def _dataset(
    kind: str,
    object_id: str,
    host: str,
    organization: str | None,
    document: Mapping[str, Any] | None = None,
) -> Any:
    from openlineage.client.event_v2 import Dataset

    namespace, name = dataset_names(kind, object_id, host=host, organization=organization)
    facets: dict[str, Any] = {}
    if document is not None and isinstance(document.get("platform"), str):
        from openlineage.client.generated.datasource_dataset import DatasourceDatasetFacet

        platform = document["platform"]
        instance = document.get("instanceUrl")
        facets["dataSource"] = DatasourceDatasetFacet(
            name=platform, uri=instance if isinstance(instance, str) and instance else f"{namespace}/{name}"
        )
    return Dataset(namespace=namespace, name=name, facets=facets)


def _file_dataset(path: str) -> Any:
    """A file the task wrote, named as OpenLineage names local files (``file://<host>``, the path)."""
    from openlineage.client.event_v2 import Dataset

    return Dataset(namespace=f"file://{socket.gethostname()}", name=os.path.abspath(path))


def _api_call_facets(method: Any, endpoint: Any) -> dict[str, Any]:
    if not isinstance(method, str) or not isinstance(endpoint, str):
        return {}
    path = endpoint.split("?", 1)[0].split("#", 1)[0].strip() or "/"
    if not path.startswith("/"):
        path = f"/{path}"
    return {API_CALL_FACET: _api_call_facet_class()(method=method.strip().upper(), path=path)}


@functools.cache
def _api_call_facet_class() -> Any:
    """Defined on first use: the facet's base class comes from ``openlineage-python``."""
    import attr
    from openlineage.client.generated.base import JobFacet

    @attr.define
    class PartnerOSApiCallJobFacet(JobFacet):  # type: ignore[misc]
        """The PartnerOS call a generic task makes: HTTP method and path (never the query or body)."""

        method: str
        path: str

        @staticmethod
        def _get_schema() -> str:
            return "urn:airflow-provider-partneros:facet:PartnerOSApiCallJobFacet:1"

    return PartnerOSApiCallJobFacet


__all__ = [
    "ACTIVE_ORGANIZATION",
    "API_CALL_FACET",
    "MAX_PARTNER_DATASETS",
    "company_key",
    "data_source",
    "dataset_names",
    "operator_lineage",
]
