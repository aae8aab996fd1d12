"""``version_compat``: each Airflow-version difference answers the same way on every supported Airflow."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

from airflow_provider_partneros import version_compat


class OldConnection:
    """A connection as Airflow 3.2 hands it over: a sync ``extra_dejson`` only."""

    extra_dejson: dict[str, Any] = {"timeout": 5}


class NewConnection(OldConnection):
    """Airflow 3.3 adds ``aextra_dejson``, which must be preferred inside an event loop."""

    async def aextra_dejson(self) -> dict[str, Any]:
        return {"timeout": 7}


def test_retry_policies_are_available_exactly_when_airflow_has_the_module() -> None:
    expected = importlib.util.find_spec("airflow.sdk.definitions.retry_policy") is not None
    assert version_compat.retry_policies_available() is expected


def test_a_context_without_a_task_state_store_gives_none() -> None:
    assert version_compat.task_state_store({}) is None
    store = object()
    assert version_compat.task_state_store({"task_state_store": store}) is store


def test_a_trigger_without_an_asset_state_store_gives_none() -> None:
    class Trigger:
        pass

    trigger = Trigger()
    assert version_compat.asset_state_store(trigger) is None
    trigger.asset_state_store = "store"  # type: ignore[attr-defined]
    assert version_compat.asset_state_store(trigger) == "store"


def test_the_async_extra_is_preferred_and_the_sync_one_is_the_fallback() -> None:
    assert asyncio.run(version_compat.aconnection_extra(NewConnection())) == {"timeout": 7}
    assert asyncio.run(version_compat.aconnection_extra(OldConnection())) == {"timeout": 5}


def test_the_airflow_version_is_a_version_string() -> None:
    assert version_compat.airflow_version().split(".")[0] == "3"
