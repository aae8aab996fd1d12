"""pytest fixtures for testing DAGs and hooks against the PartnerOS stand-in.

Registered as the ``partneros`` pytest11 entry point, so installing the provider makes these
fixtures available everywhere. Every test gets its own freshly seeded server (starting and
stopping one takes a few milliseconds), so no state leaks between tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_partneros.testing import DEFAULT_CONN_ID, PartnerOSStandIn

CONN_ENV_VAR = "AIRFLOW_CONN_" + DEFAULT_CONN_ID.upper()


@pytest.fixture
def partneros_server() -> Iterator[PartnerOSStandIn]:
    """A started stand-in seeded with the demo data (see ``seed_demo``), stopped after the test."""
    server = PartnerOSStandIn()
    server.seed_demo()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def partneros_connection(partneros_server: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the ``partneros_default`` Airflow connection at ``partneros_server``; returns the conn id."""
    monkeypatch.setenv(CONN_ENV_VAR, partneros_server.connection_json(extra={"timeout": 5}))
    return DEFAULT_CONN_ID
