"""PartnerOS operators: one generic API operator and typed operators with JSON-serializable XCom results.

Imported lazily, like :mod:`airflow_provider_partneros.sensors`: ``import
airflow_provider_partneros.operators`` costs nothing, and each class loads its module on first use
(``from airflow_provider_partneros.operators import AnalyzePartnerOperator`` works as always).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_partneros.operators.batch import BatchAnalyzePartnersOperator
    from airflow_provider_partneros.operators.partneros import (
        AnalyzePartnerOperator,
        BasePartnerOSOperator,
        GenerateIcpOperator,
        GetIntegrationSchemaOperator,
        PartnerOSApiOperator,
        SubmitPartnerApplicationOperator,
    )

_IN_PARTNEROS = frozenset(
    {
        "AnalyzePartnerOperator",
        "BasePartnerOSOperator",
        "GenerateIcpOperator",
        "GetIntegrationSchemaOperator",
        "PartnerOSApiOperator",
        "SubmitPartnerApplicationOperator",
    }
)
"""The classes defined in :mod:`.partneros`; the batch operator lives in :mod:`.batch`."""

__all__ = [
    "AnalyzePartnerOperator",
    "BasePartnerOSOperator",
    "BatchAnalyzePartnersOperator",
    "GenerateIcpOperator",
    "GetIntegrationSchemaOperator",
    "PartnerOSApiOperator",
    "SubmitPartnerApplicationOperator",
]


def __getattr__(name: str) -> Any:
    if name == "BatchAnalyzePartnersOperator":
        from airflow_provider_partneros.operators.batch import BatchAnalyzePartnersOperator

        return BatchAnalyzePartnersOperator
    if name in _IN_PARTNEROS:
        from airflow_provider_partneros.operators import partneros

        return getattr(partneros, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
