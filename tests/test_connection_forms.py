"""Every documented way of writing a ``partneros`` connection works end to end (docs/connection.md).

Each test puts a connection in ``AIRFLOW_CONN_<ID>`` exactly as a user would (URI or JSON form),
lets :class:`PartnerOSHook` read it through Airflow's secrets lookup, and signs in to a stand-in
with :meth:`PartnerOSHook.test_connection` (a real sign-in, session read and sign-out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import certifi
import pytest

from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.testing import DEMO_EMAIL, DEMO_ORG_ID, DEMO_PASSWORD, PartnerOSStandIn
from airflow_provider_partneros.testing.tls import TLSFiles, make_self_signed

AWKWARD_EMAIL = "etl+ops@partneros.test"
AWKWARD_PASSWORD = "p@ss:w/rd%2F+#?&= x"
"""Every character that means something in a URI: ``@ : / % + # ? & =``, a space and an escape look-alike."""


def _use(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: str) -> PartnerOSHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    return PartnerOSHook(conn_id)


def _connected(hook: PartnerOSHook, standin: PartnerOSStandIn) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert message == f"Connected to {standin.base_url}: signed in, active organization {DEMO_ORG_ID}."


@pytest.fixture
def standin() -> Iterator[PartnerOSStandIn]:
    server = PartnerOSStandIn(sign_in_rate_limit=None)
    server.seed_demo()
    server.add_user(AWKWARD_EMAIL, AWKWARD_PASSWORD, organizations=[DEMO_ORG_ID])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_standin(tls_files: TLSFiles) -> Iterator[PartnerOSStandIn]:
    server = PartnerOSStandIn(tls=tls_files.server_context(), sign_in_rate_limit=None)
    server.seed_demo()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _port(standin: PartnerOSStandIn) -> int:
    return int(standin.base_url.rsplit(":", 1)[1])


# --- JSON form ---------------------------------------------------------------------------------------------


def test_json_form_with_typed_extras(monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn) -> None:
    conn = {
        "conn_type": "partneros",
        "host": standin.base_url,
        "login": AWKWARD_EMAIL,
        "password": AWKWARD_PASSWORD,  # JSON needs no encoding at all
        "extra": {
            "organization_id": DEMO_ORG_ID,
            "timeout": 7.5,
            "verify": True,
            "max_retries": 0,
            "retry_backoff": 0.5,
        },
    }
    hook = _use(monkeypatch, "pos_json", json.dumps(conn))
    settings = hook.connection_settings
    assert (settings.email, settings.password) == (AWKWARD_EMAIL, AWKWARD_PASSWORD)
    assert (settings.timeout, settings.max_retries, settings.retry_backoff) == (7.5, 0, 0.5)
    assert settings.verify is True
    assert settings.warnings == ()
    _connected(hook, standin)
    assert standin.sign_ins == 1


def test_json_form_extras_as_strings_are_accepted(
    monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn
) -> None:
    """What the UI form and URI query strings produce: every extra a string."""
    conn = standin.connection_dict(extra={"timeout": "5", "max_retries": "1", "verify": "true"})
    hook = _use(monkeypatch, "pos_json_str", json.dumps(conn))
    assert (hook.connection_settings.timeout, hook.connection_settings.max_retries) == (5.0, 1)
    _connected(hook, standin)


# --- URI form ----------------------------------------------------------------------------------------------


def test_uri_form_percent_encoded_password(
    monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn
) -> None:
    login, password = quote(AWKWARD_EMAIL, safe=""), quote(AWKWARD_PASSWORD, safe="")
    assert password == "p%40ss%3Aw%2Frd%252F%2B%23%3F%26%3D%20x"  # what docs/connection.md shows
    uri = f"partneros://{login}:{password}@127.0.0.1:{_port(standin)}/http?timeout=5&max_retries=0"
    hook = _use(monkeypatch, "pos_uri", uri)
    settings = hook.connection_settings
    assert (settings.email, settings.password) == (AWKWARD_EMAIL, AWKWARD_PASSWORD)
    assert settings.base_url == standin.base_url
    assert (settings.timeout, settings.max_retries) == (5.0, 0)
    _connected(hook, standin)


def test_uri_form_as_airflow_writes_it(monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn) -> None:
    """``Connection.get_uri()`` (used by Airflow's own connection test) round-trips every field."""
    from airflow.models.connection import Connection

    conn = Connection(
        conn_id="pos_roundtrip",
        conn_type="partneros",
        host=standin.base_url,
        login=AWKWARD_EMAIL,
        password=AWKWARD_PASSWORD,
        extra=json.dumps({"timeout": 5, "verify": True}),
    )
    uri = conn.get_uri()
    assert uri.startswith("partneros://http://")  # Airflow's "protocol in the URI" form
    hook = _use(monkeypatch, "pos_roundtrip", uri)
    assert hook.connection_settings.password == AWKWARD_PASSWORD
    assert hook.connection_settings.timeout == 5.0
    _connected(hook, standin)


def test_uri_form_wrong_password_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn
) -> None:
    wrong = AWKWARD_PASSWORD + "!"
    uri = (
        f"partneros://{quote(AWKWARD_EMAIL, safe='')}:{quote(wrong, safe='')}@127.0.0.1:{_port(standin)}/http"
    )
    ok, message = _use(monkeypatch, "pos_wrong", uri).test_connection()
    assert not ok
    assert "Sign-in refused" in message
    assert wrong not in message
    assert quote(wrong, safe="") not in message


def test_uri_host_without_scheme_means_https(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _use(monkeypatch, "pos_https", "partneros://me%40example.com:secret-pw@app.partneros.example")
    assert hook.connection_settings.base_url == "https://app.partneros.example"
    hook = _use(
        monkeypatch, "pos_https_port", "partneros://me%40example.com:secret-pw@app.partneros.example:8443"
    )
    assert hook.connection_settings.base_url == "https://app.partneros.example:8443"


def test_uri_host_without_scheme_signs_in_over_tls(
    monkeypatch: pytest.MonkeyPatch, tls_standin: PartnerOSStandIn, tls_files: TLSFiles
) -> None:
    query = urlencode({"verify": tls_files.ca_path, "timeout": "5"})
    login, password = quote(DEMO_EMAIL, safe=""), quote(DEMO_PASSWORD, safe="")
    uri = f"partneros://{login}:{password}@127.0.0.1:{_port(tls_standin)}?{query}"
    hook = _use(monkeypatch, "pos_tls", uri)
    assert tls_standin.base_url.startswith("https://")
    assert hook.connection_settings.base_url == tls_standin.base_url
    assert hook.connection_settings.verify == tls_files.ca_path
    _connected(hook, tls_standin)


# --- the verify extra against REQUESTS_CA_BUNDLE --------------------------------------------------------


def _tls_conn(standin: PartnerOSStandIn, verify: object) -> str:
    return json.dumps(standin.connection_dict(extra={"verify": verify, "timeout": 5, "max_retries": 0}))


def test_verify_true_ignores_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tls_standin: PartnerOSStandIn, tls_files: TLSFiles
) -> None:
    """The bundle in the environment would trust the stand-in; ``verify: true`` must not use it."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files.ca_path)
    monkeypatch.setenv("CURL_CA_BUNDLE", tls_files.ca_path)
    ok, message = _use(monkeypatch, "pos_v_true", _tls_conn(tls_standin, True)).test_connection()
    assert not ok
    assert "TLS" in message or "certificate" in message, message
    assert tls_standin.sign_ins == 0


def test_verify_ca_path_wins_over_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tls_standin: PartnerOSStandIn, tls_files: TLSFiles
) -> None:
    """The environment names a bundle that does not trust the stand-in; the connection's CA does."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    hook = _use(monkeypatch, "pos_v_path", _tls_conn(tls_standin, tls_files.ca_path))
    _connected(hook, tls_standin)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_wins_over_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tls_standin: PartnerOSStandIn
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    hook = _use(monkeypatch, "pos_v_false", _tls_conn(tls_standin, "false"))
    assert hook.connection_settings.verify is False
    _connected(hook, tls_standin)


def test_verify_path_that_does_not_exist_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_partneros.exceptions import PartnerOSConfigError

    missing = str(Path("/nonexistent") / "ca.pem")
    hook = _use(
        monkeypatch, "pos_v_missing", json.dumps({"conn_type": "partneros", "extra": {"verify": missing}})
    )
    with pytest.raises(PartnerOSConfigError, match="verify"):
        _ = hook.connection_settings
