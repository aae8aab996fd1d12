"""PartnerOS triggers (imported lazily: only the triggerer and deferring tasks need them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger
    from airflow_provider_partneros.triggers.integration_synced import (
        IntegrationSyncedTrigger,
        integration_synced_asset,
    )

__all__ = ["IntegrationStatusTrigger", "IntegrationSyncedTrigger", "integration_synced_asset"]


def __getattr__(name: str) -> Any:
    if name == "IntegrationStatusTrigger":
        from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger

        return IntegrationStatusTrigger
    if name in ("IntegrationSyncedTrigger", "integration_synced_asset"):
        from airflow_provider_partneros.triggers import integration_synced

        return getattr(integration_synced, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
