"""PartnerOS sensors (imported lazily, so ``import airflow_provider_partneros.sensors`` costs nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

__all__ = ["IntegrationStatusSensor"]


def __getattr__(name: str) -> Any:
    if name == "IntegrationStatusSensor":
        from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

        return IntegrationStatusSensor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
