"""pytest fixtures for testing DAGs and hooks against the PartnerOS stand-in.

Registered as the ``partneros`` pytest11 entry point, so installing the provider makes these
fixtures available everywhere. Every test gets its own freshly seeded server (starting and
stopping one takes a few milliseconds) and its own session store (``[partneros] session_dir``), so
no state leaks between tests, nor between a test run and a deployment on the same machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_partneros.testing import DEFAULT_CONN_ID, PartnerOSStandIn

CONN_ENV_VAR = "AIRFLOW_CONN_" + DEFAULT_CONN_ID.upper()
SESSION_DIR_ENV_VAR = "AIRFLOW__PARTNEROS__SESSION_DIR"
SESSION_LINGER_ENV_VAR = "AIRFLOW__PARTNEROS__SESSION_LINGER"


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
def partneros_session_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A session store of this test's own: ``[partneros] session_dir`` points at a new private directory,
    and ``session_linger`` is 0, so the last task out signs out at once (a test sees every sign-out
    before it ends, and no steward process outlives it)."""
    directory = tmp_path_factory.mktemp("partneros-sessions")
    directory.chmod(0o700)
    monkeypatch.setenv(SESSION_DIR_ENV_VAR, str(directory))
    monkeypatch.setenv(SESSION_LINGER_ENV_VAR, "0")
    return directory


@pytest.fixture
def partneros_connection(
    partneros_server: PartnerOSStandIn, partneros_session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Point the ``partneros_default`` Airflow connection at ``partneros_server`` (with a session store
    of this test's own); returns the conn id."""
    monkeypatch.setenv(CONN_ENV_VAR, partneros_server.connection_json(extra={"timeout": 5}))
    return DEFAULT_CONN_ID
