"""PartnerOS triggers (imported lazily: only the triggerer and deferring tasks need them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger

__all__ = ["IntegrationStatusTrigger"]


def __getattr__(name: str) -> Any:
    if name == "IntegrationStatusTrigger":
        from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger

        return IntegrationStatusTrigger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
