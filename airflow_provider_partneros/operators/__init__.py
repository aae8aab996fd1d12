"""PartnerOS operators: one generic API operator and typed operators with JSON-serializable XCom results."""

from __future__ import annotations

from airflow_provider_partneros.operators.batch import AnalyzePartnersOperator
from airflow_provider_partneros.operators.partneros import (
    AnalyzePartnerOperator,
    BasePartnerOSOperator,
    GenerateIcpOperator,
    GetIntegrationSchemaOperator,
    PartnerOSApiOperator,
    SubmitPartnerApplicationOperator,
)

__all__ = [
    "AnalyzePartnerOperator",
    "AnalyzePartnersOperator",
    "BasePartnerOSOperator",
    "GenerateIcpOperator",
    "GetIntegrationSchemaOperator",
    "PartnerOSApiOperator",
    "SubmitPartnerApplicationOperator",
]
