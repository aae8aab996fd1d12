"""The ``partneros`` asset scheme as Airflow sees it: registered, normalised to one spelling, malformed
URIs refused with a message, and the factory building the same assets."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset

from airflow_provider_partneros.assets import asset_uri, create_asset, openlineage_names

CANONICAL = "partneros://app.partneros.com/org_1/integrations/conn_1"


def test_airflow_loads_the_handler_and_factory_from_provider_info() -> None:
    from airflow_provider_partneros.assets import create_asset as factory
    from airflow_provider_partneros.assets import normalize_uri

    try:  # where Airflow's Asset looks them up (task SDK); older: the core ProvidersManager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Manager
    except ImportError:  # pragma: no cover - Airflow 3.2
        from airflow.providers_manager import ProvidersManager as Manager  # type: ignore[assignment]

    manager = Manager()
    assert manager.asset_uri_handlers["partneros"] is normalize_uri
    assert manager.asset_factories["partneros"] is factory


@pytest.mark.parametrize(
    "spelling",
    [
        CANONICAL,
        "PARTNEROS://App.PartnerOS.com/org_1/integrations/conn_1",
        "partneros://app.partneros.com:443/org_1/integrations/conn_1/",
        "partneros://app.partneros.com/org%5F1/Integrations/conn%5f1#fragment",
    ],
)
def test_every_spelling_of_one_asset_normalises_to_one_uri(spelling: str) -> None:
    assert Asset(uri=spelling).uri == CANONICAL


def test_normalised_uri_round_trips_unchanged() -> None:
    uri = asset_uri("partners", "p/1 ä", organization="org 1", host="127.0.0.1:8123")
    assert uri == "partneros://127.0.0.1:8123/org%201/partners/p%2F1%20%C3%A4"
    assert Asset(uri=uri).uri == uri
    assert Asset(uri=Asset(uri=uri).uri).uri == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("partneros://crm/integrations/conn_1/synced", "old partneros://<Airflow connection id>"),
        ("partneros://app.partneros.com/org_1/integrations", "exactly three path segments"),
        ("partneros://app.partneros.com/org_1/tables/t1", "names kind 'tables'"),
        ("partneros://me@app.partneros.com/org_1/integrations/conn_1", "never credentials"),
        ("partneros://app.partneros.com/org_1/integrations/conn_1?extra__timeout=5", "has a query"),
        ("partneros:///org_1/integrations/conn_1", "no valid host"),
    ],
)
def test_malformed_uri_is_refused_with_a_message(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match="partneros://<host>/<organization>") as refused:
        Asset(uri=uri)
    assert message in str(refused.value)


def test_factory_builds_the_asset_named_by_its_uri() -> None:
    asset = create_asset(id="conn_1", organization="org_1")
    assert asset.name == asset.uri == CANONICAL


def test_connection_without_organization_gets_the_active_organization_segment() -> None:
    assert asset_uri("icp", "acme", organization=None) == "partneros://app.partneros.com/_/icp/acme"


def test_openlineage_names_follow_the_naming_spec() -> None:
    assert openlineage_names(CANONICAL) == ("partneros://app.partneros.com", "org_1/integrations/conn_1")
