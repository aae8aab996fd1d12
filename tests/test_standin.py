"""Behaviours of the PartnerOS stand-in server, checked over real loopback HTTP with ``requests``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests

from airflow_provider_partneros.testing import (
    DEMO_APPLICATION_SLUG,
    DEMO_BROKEN_CONNECTION,
    DEMO_EMAIL,
    DEMO_HUBSPOT_CONNECTION,
    DEMO_ORG_ID,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    NOORG_EMAIL,
    OTHER_ORG_CONNECTION,
    OTHER_ORG_ID,
    OTHER_ORG_PARTNER_ID,
    PARTNER_EMAIL,
    UNVERIFIED_EMAIL,
    Fault,
    PartnerOSStandIn,
    make_self_signed,
)

_PLUGIN = "airflow_provider_partneros.testing.pytest_plugin"
if not any(ep.value == _PLUGIN for ep in entry_points(group="pytest11")):
    # Not installed as a distribution yet: load the fixtures the entry point would provide.
    pytest_plugins = [_PLUGIN]

SIGN_IN = "/api/auth/sign-in/email"
STATUS = "/api/integrations/{}/status"
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TIMEOUT = 5


class FakeClock:
    """A settable wall clock so rate-limit windows and session expiry need no sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def server(partneros_server: PartnerOSStandIn) -> PartnerOSStandIn:
    return partneros_server


@pytest.fixture
def clock(server: PartnerOSStandIn) -> FakeClock:
    fake = FakeClock()
    server.clock = fake
    return fake


def url(server: PartnerOSStandIn, path: str) -> str:
    return server.base_url + path


def sign_in(
    server: PartnerOSStandIn, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD
) -> requests.Session:
    """A client session signed in the way the provider does it: cookie jar plus Origin header."""
    session = requests.Session()
    session.headers["Origin"] = server.origin
    resp = session.post(url(server, SIGN_IN), json={"email": email, "password": password}, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return session


def raw_sign_in(server: PartnerOSStandIn, email: str = DEMO_EMAIL, **kwargs: object) -> requests.Response:
    return requests.post(
        url(server, SIGN_IN), json={"email": email, "password": DEMO_PASSWORD}, timeout=TIMEOUT, **kwargs
    )


# --- sign-in and the session cookie


def test_sign_in_sets_signed_urlencoded_cookie_with_attributes(server: PartnerOSStandIn) -> None:
    resp = raw_sign_in(server)
    body = resp.json()
    assert resp.status_code == 200
    assert body["redirect"] is False
    assert body["url"] is None
    assert body["user"]["email"] == DEMO_EMAIL
    set_cookie = resp.headers["Set-Cookie"]
    name, _, rest = set_cookie.partition("=")
    value, *attrs = [part.strip() for part in rest.split(";")]
    assert name == "better-auth.session_token"
    assert set(attrs) == {"Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=604800"}
    assert value.endswith("%3D")  # base64 padding, URL-encoded like better-auth does
    token, _, signature = unquote(value).rpartition(".")
    assert token == body["token"]
    assert len(signature) == 44
    assert signature.endswith("=")
    assert value == quote(unquote(value), safe="")


def test_raw_json_token_does_not_authenticate_as_cookie(server: PartnerOSStandIn) -> None:
    token = raw_sign_in(server).json()["token"]
    resp = requests.get(
        url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)),
        headers={"Cookie": f"better-auth.session_token={token}"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 401
    assert resp.json() == {"error": "Unauthorized"}


def test_forged_signature_does_not_authenticate(server: PartnerOSStandIn) -> None:
    token = raw_sign_in(server).json()["token"]
    forged = quote(f"{token}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", safe="")
    resp = requests.get(
        url(server, "/api/auth/get-session"),
        headers={"Cookie": f"better-auth.session_token={forged}"},
        timeout=TIMEOUT,
    )
    assert resp.json() is None


def test_cookie_session_reports_active_organization(server: PartnerOSStandIn) -> None:
    body = sign_in(server).get(url(server, "/api/auth/get-session"), timeout=TIMEOUT).json()
    assert body["session"]["activeOrganizationId"] == DEMO_ORG_ID
    assert body["user"]["email"] == DEMO_EMAIL
    assert ISO_MS_Z.match(body["session"]["expiresAt"])


def test_get_session_without_cookie_is_json_null(server: PartnerOSStandIn) -> None:
    resp = requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.text == "null"


def test_cookie_prefix_is_configurable() -> None:
    with PartnerOSStandIn(cookie_prefix="partneros") as srv:
        srv.seed_demo()
        assert raw_sign_in(srv).headers["Set-Cookie"].startswith("partneros.session_token=")


def test_wrong_password_is_401_in_auth_shape(server: PartnerOSStandIn) -> None:
    resp = requests.post(
        url(server, SIGN_IN), json={"email": DEMO_EMAIL, "password": "nope"}, timeout=TIMEOUT
    )
    assert resp.status_code == 401
    assert resp.json()["code"] == "INVALID_EMAIL_OR_PASSWORD"
    assert "message" in resp.json()
    assert "error" not in resp.json()
    assert "Set-Cookie" not in resp.headers


def test_unverified_email_is_403(server: PartnerOSStandIn) -> None:
    resp = raw_sign_in(server, UNVERIFIED_EMAIL)
    assert resp.status_code == 403
    assert resp.json()["code"] == "EMAIL_NOT_VERIFIED"


@pytest.mark.parametrize(
    "data",
    [b"email=demo", b"[]", b'{"email": "demo@partneros.test"}', b'{"email": 1, "password": "x"}'],
    ids=["form-encoded", "json-array", "missing-password", "non-string-email"],
)
def test_bad_sign_in_body_is_400_validation_error(server: PartnerOSStandIn, data: bytes) -> None:
    resp = requests.post(url(server, SIGN_IN), data=data, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert resp.json()["code"] == "VALIDATION_ERROR"


def test_every_sign_in_creates_a_new_session_and_old_ones_stay_valid(server: PartnerOSStandIn) -> None:
    first, second = sign_in(server), sign_in(server)
    assert first.cookies != second.cookies
    assert server.active_sessions == 2
    assert server.sign_ins == 2
    for client in (first, second):
        status = client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
        assert status.status_code == 200


# --- Origin check


@pytest.mark.parametrize(
    ("origin", "code"),
    [
        (None, "MISSING_OR_NULL_ORIGIN"),
        ("null", "MISSING_OR_NULL_ORIGIN"),
        ("https://evil.example", "INVALID_ORIGIN"),
    ],
)
def test_cookie_post_without_matching_origin_is_403(
    server: PartnerOSStandIn, origin: str | None, code: str
) -> None:
    client = sign_in(server)
    del client.headers["Origin"]
    headers = {"Origin": origin} if origin else {}
    resp = client.post(url(server, "/api/partners/partner-1/analyze"), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 403
    assert resp.json()["code"] == code
    assert "message" in resp.json()


def test_post_without_cookie_needs_no_origin(server: PartnerOSStandIn) -> None:
    assert raw_sign_in(server).status_code == 200


def test_cookie_post_with_own_origin_passes(server: PartnerOSStandIn) -> None:
    resp = sign_in(server).post(url(server, "/api/partners/partner-1/analyze"), timeout=TIMEOUT)
    assert resp.status_code == 200


def test_origin_matching_the_host_the_client_used_passes(server: PartnerOSStandIn) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    cookie = sign_in(server).cookies.get("better-auth.session_token")
    headers = {
        "Host": f"partneros-standin:{port}",  # e.g. a docker-compose service name
        "Origin": f"http://partneros-standin:{port}",
        "Cookie": f"better-auth.session_token={cookie}",  # a jar would key it to the Host header
    }
    resp = requests.post(url(server, "/api/partners/partner-1/analyze"), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 200


def test_sign_in_again_with_old_cookie_requires_origin(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    del client.headers["Origin"]
    resp = client.post(
        url(server, SIGN_IN), json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}, timeout=TIMEOUT
    )
    assert resp.status_code == 403
    assert resp.json()["code"] == "MISSING_OR_NULL_ORIGIN"


# --- sign-in rate limit


def test_fourth_sign_in_in_window_is_429_with_x_retry_after_as_text(
    server: PartnerOSStandIn, clock: FakeClock
) -> None:
    bad = {"email": DEMO_EMAIL, "password": "wrong"}
    assert requests.post(url(server, SIGN_IN), json=bad, timeout=TIMEOUT).status_code == 401
    clock.advance(2)
    assert requests.post(url(server, SIGN_IN), json=bad, timeout=TIMEOUT).status_code == 401
    assert raw_sign_in(server).status_code == 200
    limited = raw_sign_in(server)
    assert limited.status_code == 429
    assert limited.headers["X-Retry-After"] == "8"
    assert "Retry-After" not in limited.headers
    assert limited.headers["Content-Type"].startswith("text/plain")
    assert json.loads(limited.text) == {"message": "Too many requests. Please try again later."}
    assert server.sign_in_attempts == 4
    assert server.sign_ins == 1


def test_rate_limit_slot_frees_when_window_passes(server: PartnerOSStandIn, clock: FakeClock) -> None:
    for _ in range(3):
        raw_sign_in(server)
    assert raw_sign_in(server).status_code == 429
    clock.advance(9.5)
    assert raw_sign_in(server).headers["X-Retry-After"] == "1"
    clock.advance(0.5)
    assert raw_sign_in(server).status_code == 200


def test_rate_limit_is_per_client_ip(server: PartnerOSStandIn, clock: FakeClock) -> None:
    for _ in range(3):
        raw_sign_in(server)
    assert raw_sign_in(server).status_code == 429
    assert raw_sign_in(server, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200


def test_sign_in_rate_limited_counts_the_limiters_429s_only(
    server: PartnerOSStandIn, clock: FakeClock
) -> None:
    assert server.sign_in_rate_limited == 0
    statuses = [raw_sign_in(server).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    server.inject(Fault.rate_limited(route=SIGN_IN))
    assert raw_sign_in(server).status_code == 429  # injected: not the limiter's
    clock.advance(10)
    assert raw_sign_in(server).status_code == 200
    assert server.sign_in_rate_limited == 2


def test_rate_limit_can_be_disabled() -> None:
    with PartnerOSStandIn(sign_in_rate_limit=None) as srv:
        srv.seed_demo()
        assert all(raw_sign_in(srv).status_code == 200 for _ in range(6))
        assert srv.sign_ins == 6


# --- session lifetime


def test_expire_sessions_makes_next_call_401(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    server.expire_sessions()
    resp = client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
    assert resp.status_code == 401
    assert resp.json() == {"error": "Unauthorized"}
    assert server.active_sessions == 0


def test_session_expires_after_ttl(server: PartnerOSStandIn, clock: FakeClock) -> None:
    server.session_ttl = 60
    client = sign_in(server)
    clock.advance(61)
    resp = client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
    assert resp.status_code == 401


def test_sign_out_ends_session_and_is_counted_once(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    resp = client.post(url(server, "/api/auth/sign-out"), timeout=TIMEOUT)
    assert resp.json() == {"success": True}
    assert server.sign_outs == 1
    assert server.active_sessions == 0
    assert "Max-Age=0" in resp.headers["Set-Cookie"]
    again = requests.post(url(server, "/api/auth/sign-out"), timeout=TIMEOUT)
    assert again.json() == {"success": True}
    assert server.sign_outs == 1


def test_live_sessions_by_user_leaves_out_signed_out_and_expired_sessions(
    server: PartnerOSStandIn, clock: FakeClock
) -> None:
    server.session_ttl = 60
    assert server.live_sessions_by_user() == {}
    first = sign_in(server)
    sign_in(server)
    clock.advance(30)
    sign_in(server, PARTNER_EMAIL)
    assert server.live_sessions_by_user() == {DEMO_EMAIL: 2, PARTNER_EMAIL: 1}
    first.post(url(server, "/api/auth/sign-out"), timeout=TIMEOUT)
    assert server.live_sessions_by_user() == {DEMO_EMAIL: 1, PARTNER_EMAIL: 1}
    clock.advance(31)
    assert server.live_sessions_by_user() == {PARTNER_EMAIL: 1}
    server.expire_sessions()
    assert server.live_sessions_by_user() == {}


def test_live_sessions_by_client_counts_the_address_each_session_was_signed_in_from(
    server: PartnerOSStandIn,
) -> None:
    assert server.live_sessions_by_client() == {}
    first = sign_in(server)
    sign_in(server)
    assert {ip: len(ids) for ip, ids in server.live_sessions_by_client().items()} == {"127.0.0.1": 2}
    first.post(url(server, "/api/auth/sign-out"), timeout=TIMEOUT)
    assert {ip: len(ids) for ip, ids in server.live_sessions_by_client().items()} == {"127.0.0.1": 1}


def test_oldest_live_session_age_follows_the_server_clock(server: PartnerOSStandIn, clock: FakeClock) -> None:
    assert server.oldest_live_session_age() is None
    older = sign_in(server)
    clock.advance(30)
    sign_in(server, PARTNER_EMAIL)
    clock.advance(10)
    assert server.oldest_live_session_age() == 40
    older.post(url(server, "/api/auth/sign-out"), timeout=TIMEOUT)
    assert server.oldest_live_session_age() == 10
    server.expire_sessions()
    assert server.oldest_live_session_age() is None


def test_refresh_cookie_on_responses_resends_cookie() -> None:
    with PartnerOSStandIn(refresh_cookie_on_responses=True) as srv:
        srv.seed_demo()
        client = sign_in(srv)
        value = client.cookies.get("better-auth.session_token")
        resp = client.get(url(srv, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
        assert resp.headers["Set-Cookie"].startswith(f"better-auth.session_token={value};")
        assert "Max-Age=604800" in resp.headers["Set-Cookie"]


# --- roles, organizations, error shapes


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", STATUS.format(DEMO_SALESFORCE_CONNECTION)),
        ("GET", f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/schema"),
        ("POST", "/api/partners/partner-1/analyze"),
        ("POST", "/api/ai/icp"),
    ],
)
def test_partner_role_is_forbidden_on_internal_endpoints(
    server: PartnerOSStandIn, method: str, path: str
) -> None:
    resp = sign_in(server, PARTNER_EMAIL).request(
        method, url(server, path), json={"company": "x"}, timeout=TIMEOUT
    )
    assert resp.status_code == 403
    assert resp.json() == {"error": "Forbidden"}


def test_no_active_organization_is_400(server: PartnerOSStandIn) -> None:
    resp = sign_in(server, NOORG_EMAIL).get(
        url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "No active organization."}


def test_set_active_organization_then_org_scoped_calls_work(server: PartnerOSStandIn) -> None:
    client = sign_in(server, NOORG_EMAIL)
    resp = client.post(
        url(server, "/api/auth/organization/set-active"), json={"organizationId": OTHER_ORG_ID}
    )
    assert resp.status_code == 200
    assert resp.json()["id"] == OTHER_ORG_ID
    assert client.get(url(server, STATUS.format(OTHER_ORG_CONNECTION)), timeout=TIMEOUT).status_code == 200
    session = client.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT).json()
    assert session["session"]["activeOrganizationId"] == OTHER_ORG_ID


def test_set_active_organization_of_non_member_is_403(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    resp = client.post(
        url(server, "/api/auth/organization/set-active"),
        json={"organizationId": OTHER_ORG_ID},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 403
    assert resp.json()["code"] == "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION"


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", STATUS.format(OTHER_ORG_CONNECTION), "Integration not found."),
        ("GET", STATUS.format("conn_does_not_exist"), "Integration not found."),
        ("POST", f"/api/partners/{OTHER_ORG_PARTNER_ID}/analyze", "Partner not found."),
    ],
)
def test_other_organizations_resource_is_404_not_found(
    server: PartnerOSStandIn, method: str, path: str, message: str
) -> None:
    resp = sign_in(server).request(method, url(server, path), timeout=TIMEOUT)
    assert resp.status_code == 404
    assert resp.json() == {"error": message, "code": "not_found"}


def test_api_call_without_cookie_is_401_error_shape(server: PartnerOSStandIn) -> None:
    resp = requests.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
    assert resp.status_code == 401
    assert resp.json() == {"error": "Unauthorized"}


def test_unknown_route_is_404_json(server: PartnerOSStandIn) -> None:
    resp = requests.get(url(server, "/api/workflows/picker"), timeout=TIMEOUT)
    assert resp.status_code == 404
    assert resp.json() == {"error": "Not found."}


def test_wrong_method_on_known_route_is_405(server: PartnerOSStandIn) -> None:
    resp = requests.delete(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


# --- integrations


def test_integration_status_fields_and_timestamps(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    sf = client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT).json()
    assert {
        "id",
        "platform",
        "status",
        "instanceUrl",
        "lastSyncAt",
        "lastErrorAt",
        "lastErrorMessage",
        "createdAt",
        "schemaStats",
    } <= set(sf)
    assert sf["status"] == "active"
    assert sf["instanceUrl"].startswith("https://")
    assert ISO_MS_Z.match(sf["lastSyncAt"])
    assert ISO_MS_Z.match(sf["createdAt"])
    hubspot = client.get(url(server, STATUS.format(DEMO_HUBSPOT_CONNECTION)), timeout=TIMEOUT).json()
    assert hubspot["platform"] == "hubspot"
    assert hubspot["instanceUrl"] is None
    broken = client.get(url(server, STATUS.format(DEMO_BROKEN_CONNECTION)), timeout=TIMEOUT).json()
    assert broken["status"] == "error"
    assert broken["lastErrorMessage"]


def test_connection_ids_are_url_decoded(server: PartnerOSStandIn) -> None:
    odd = "conn 01hx/with slash"
    server.add_integration(odd, organization=DEMO_ORG_ID)
    resp = sign_in(server).get(url(server, STATUS.format(quote(odd, safe=""))), timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json()["id"] == odd


def test_scripted_statuses_advance_and_last_one_sticks(server: PartnerOSStandIn) -> None:
    server.script_integration(
        DEMO_SALESFORCE_CONNECTION,
        [
            {"status": "reauth_required"},
            {"status": "error", "last_error_message": "boom"},
            {"status": "active"},
        ],
    )
    client = sign_in(server)
    seen = [
        client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT).json()
        for _ in range(5)
    ]
    assert [s["status"] for s in seen] == ["reauth_required", "error", "active", "active", "active"]
    assert seen[1]["lastErrorMessage"] == "boom"
    assert seen[0]["platform"] == "salesforce"


def test_set_integration_changes_the_record(server: PartnerOSStandIn) -> None:
    server.set_integration(DEMO_HUBSPOT_CONNECTION, status="disconnected", last_sync_at=None)
    body = sign_in(server).get(url(server, STATUS.format(DEMO_HUBSPOT_CONNECTION)), timeout=TIMEOUT).json()
    assert body["status"] == "disconnected"
    assert body["lastSyncAt"] is None


def test_schema_summary_and_detail_are_privately_cacheable(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    base = url(server, f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/schema")
    summary = client.get(base, timeout=TIMEOUT)
    assert summary.headers["Cache-Control"] == "private, max-age=60"
    assert {o["name"] for o in summary.json()["objects"]} >= {"Account", "Opportunity", "Contact"}
    detail = client.get(base, params={"objectType": "Account"}, timeout=TIMEOUT)
    assert detail.headers["Cache-Control"] == "private, max-age=60"
    assert any(f["name"] == "Name" for f in detail.json()["fields"])
    missing = client.get(base, params={"objectType": "Nope"}, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


# --- partners and AI


def test_analyze_partner_returns_enriched_record_and_insights(server: PartnerOSStandIn) -> None:
    body = sign_in(server).post(url(server, "/api/partners/partner-2/analyze"), timeout=TIMEOUT).json()
    partner = body["partner"]
    for key in ("industry", "description", "employees", "companyRevenue", "regions", "languages", "services"):
        assert partner[key], key
    assert partner["id"] == "partner-2"
    assert isinstance(body["aiInsights"], dict)


def test_icp_is_streamed_in_chunks_that_form_one_json_document(server: PartnerOSStandIn) -> None:
    server.set_ai_quota(DEMO_ORG_ID, 5)
    resp = sign_in(server).post(
        url(server, "/api/ai/icp"), json={"company": "Acme"}, stream=True, timeout=TIMEOUT
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in resp.headers
    chunks = list(resp.raw.read_chunked(decode_content=False))
    assert len(chunks) > 5
    icp = json.loads(b"".join(chunks).decode("utf-8"))
    for key in (
        "industry",
        "verticals",
        "companySize",
        "revenue",
        "regions",
        "goals",
        "painPoints",
        "buyingSignals",
        "technologies",
        "personas",
    ):
        assert key in icp
    assert server.ai_quota(DEMO_ORG_ID) == 4


def test_icp_requires_a_non_empty_company(server: PartnerOSStandIn) -> None:
    resp = sign_in(server).post(url(server, "/api/ai/icp"), json={"company": "  "}, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert "error" in resp.json()


def test_icp_with_exhausted_quota_is_402(server: PartnerOSStandIn) -> None:
    server.set_ai_quota(DEMO_ORG_ID, 0)
    resp = sign_in(server).post(url(server, "/api/ai/icp"), json={"company": "Acme"}, timeout=TIMEOUT)
    assert resp.status_code == 402
    assert resp.json() == {"error": "AI quota exhausted.", "code": "quota_exceeded"}


def test_large_icp_is_streamed_in_16k_chunks(server: PartnerOSStandIn) -> None:
    server.set_icp_size(3 * 1024 * 1024)
    resp = sign_in(server).post(
        url(server, "/api/ai/icp"), json={"company": "Big"}, stream=True, timeout=TIMEOUT
    )
    sizes, parts = [], []
    for chunk in resp.raw.read_chunked(decode_content=False):
        sizes.append(len(chunk))
        parts.append(chunk)
    assert sum(sizes) >= 3 * 1024 * 1024
    assert max(sizes) <= 16 * 1024
    assert len(json.loads(b"".join(parts))["buyingSignals"]) > 1000


# --- public application submit


def submit(server: PartnerOSStandIn, **body: object) -> requests.Response:
    return requests.post(url(server, "/api/partners/applications/submit"), json=body, timeout=TIMEOUT)


def test_application_submit_is_public_and_returns_an_id(server: PartnerOSStandIn) -> None:
    resp = submit(
        server,
        slug=DEMO_APPLICATION_SLUG,
        data={"company": "Acme", "email": "a@acme.example"},
        agreements={"terms": True},
    )
    assert resp.status_code == 200
    assert resp.json()["success"] is True
    assert re.match(
        r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$", resp.json()["applicationId"]
    )
    assert server.applications[0]["data"]["company"] == "Acme"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"slug": "nope", "data": {}, "agreements": {}}, 404, "Application form not found."),
        (
            {"slug": DEMO_APPLICATION_SLUG, "data": {"company": "A"}, "agreements": {"terms": True}},
            400,
            "Missing required field: email",
        ),
        (
            {"slug": DEMO_APPLICATION_SLUG, "data": {"company": "A", "email": "e@x"}, "agreements": {}},
            400,
            "Missing required agreement: terms",
        ),
    ],
    ids=["unknown-slug", "missing-field", "missing-agreement"],
)
def test_application_submit_validation(
    server: PartnerOSStandIn, body: dict[str, object], status: int, error: str
) -> None:
    resp = submit(server, **body)
    assert resp.status_code == status
    assert resp.json()["error"] == error
    assert server.applications == []


# --- faults


def test_status_fault_serves_html_bad_gateway_once(server: PartnerOSStandIn) -> None:
    server.inject(Fault.html_bad_gateway("/api/integrations/*/status"))
    client = sign_in(server)
    first = client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT)
    assert first.status_code == 502
    assert first.headers["Content-Type"] == "text/html"
    assert "<html>" in first.text
    assert (
        client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), timeout=TIMEOUT).status_code == 200
    )


def test_fault_applies_to_sign_in_and_respects_method_and_times(server: PartnerOSStandIn) -> None:
    server.inject(Fault.json_error(503, "Maintenance", "maintenance", SIGN_IN, method="POST", times=2))
    assert [raw_sign_in(server).status_code for _ in range(3)] == [503, 503, 200]
    assert server.sign_in_attempts == 1
    assert server.pending_faults == []


def test_delay_fault_answers_normally_after_waiting(server: PartnerOSStandIn) -> None:
    server.inject(Fault.slow(0.3, "/api/auth/get-session"))
    started = time.monotonic()
    resp = requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)
    assert resp.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_fault_closes_without_response(server: PartnerOSStandIn) -> None:
    server.inject(Fault.drop_connection())
    with pytest.raises(requests.ConnectionError):
        requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)
    assert server.request_log[-1].status is None
    assert server.request_log[-1].fault == "drop"


def test_reset_fault_breaks_the_body_mid_way(server: PartnerOSStandIn) -> None:
    server.inject(Fault.reset_connection())
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)


def test_short_body_fault_is_an_incomplete_read(server: PartnerOSStandIn) -> None:
    server.inject(Fault.truncated_body())
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)


def test_malformed_json_fault_does_not_parse(server: PartnerOSStandIn) -> None:
    server.inject(Fault.invalid_json())
    resp = requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        resp.json()


def test_redirect_fault_sends_location(server: PartnerOSStandIn) -> None:
    server.inject(Fault.redirect_to("https://login.example/", 307))
    resp = requests.get(url(server, "/api/auth/get-session"), allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 307
    assert resp.headers["Location"] == "https://login.example/"


def test_drip_fault_trickles_bytes_and_stops_with_the_server() -> None:
    srv = PartnerOSStandIn().start()
    srv.inject(Fault.drip_feed(0.05))
    resp = requests.get(url(srv, "/api/auth/get-session"), stream=True, timeout=1)
    started = time.monotonic()
    assert resp.raw.read(4) == b"    "
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 0.5
    with pytest.raises(Exception):  # noqa: B017, PT011 - urllib3 raises a protocol error of its own kind
        resp.raw.read()


def test_status_fault_with_empty_body_has_no_content_type(server: PartnerOSStandIn) -> None:
    server.inject(Fault.empty(504))
    resp = requests.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)
    assert resp.status_code == 504
    assert resp.content == b""
    assert "Content-Type" not in resp.headers


# --- observations


def test_counters_and_request_log_record_the_exchange(server: PartnerOSStandIn) -> None:
    client = sign_in(server)
    client.get(url(server, STATUS.format(DEMO_SALESFORCE_CONNECTION)), params={"x": "1"}, timeout=TIMEOUT)
    assert server.requests["POST /api/auth/sign-in/email"] == 1
    assert server.requests["GET /api/integrations/{id}/status"] == 1
    first, last = server.request_log[-2:]
    assert first.had_cookie is False
    assert first.status == 200
    assert first.route == SIGN_IN
    assert last.had_cookie is True
    assert last.authenticated is True
    assert last.route == "/api/integrations/{id}/status"
    assert last.query == {"x": "1"}
    assert last.origin == server.origin
    assert last.client == "127.0.0.1"
    assert last.headers["cookie"] == "better-auth.session_token=<redacted>"
    assert last.cookie_names == ("better-auth.session_token",)


def test_server_never_writes_cookies_or_bodies_to_output(
    server: PartnerOSStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    client = sign_in(server)
    client.post(url(server, "/api/ai/icp"), json={"company": "Secret Co"}, timeout=TIMEOUT)
    server.inject(Fault.reset_connection())
    with pytest.raises(requests.RequestException):
        client.get(url(server, "/api/auth/get-session"), timeout=TIMEOUT)
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_reset_forgets_data_counters_and_faults(server: PartnerOSStandIn) -> None:
    sign_in(server)
    server.inject(Fault.drop_connection(times=None))
    server.reset()
    assert server.sign_ins == 0
    assert server.requests == {}
    assert server.pending_faults == []
    assert (
        requests.post(
            url(server, SIGN_IN), json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}, timeout=TIMEOUT
        ).status_code
        == 401
    )


def test_start_and_stop_are_fast() -> None:
    started = time.monotonic()
    for _ in range(10):
        srv = PartnerOSStandIn()
        srv.seed_demo()
        srv.start()
        requests.get(url(srv, "/api/auth/get-session"), timeout=TIMEOUT)
        srv.stop()
    assert (time.monotonic() - started) / 10 < 0.05


# --- TLS


def test_tls_uses_secure_cookie_and_verifies_against_the_ca_bundle(tmp_path: Path) -> None:
    files = make_self_signed(tmp_path)
    with PartnerOSStandIn(tls=files.server_context()) as srv:
        srv.seed_demo()
        assert srv.base_url.startswith("https://127.0.0.1:")
        resp = requests.post(
            url(srv, SIGN_IN),
            json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
            verify=files.ca_path,
            timeout=TIMEOUT,
        )
        assert resp.status_code == 200
        cookie = resp.headers["Set-Cookie"]
        assert cookie.startswith("__Secure-better-auth.session_token=")
        assert "; Secure" in cookie
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url(srv, "/api/auth/get-session"), verify=True, timeout=TIMEOUT)
        # verify per request: REQUESTS_CA_BUNDLE in the environment would override Session.verify
        again = requests.get(
            url(srv, "/api/auth/get-session"), cookies=resp.cookies, verify=files.ca_path, timeout=TIMEOUT
        )
        assert again.json()["user"]["email"] == DEMO_EMAIL


# --- CLI and pytest plugin


def test_cli_starts_and_prints_base_url_and_connection() -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_partneros.testing", "--port", "0", "--no-rate-limit"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    killer = threading.Timer(90, proc.kill)
    killer.start()
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = proc.stdout.readline()
            assert line, f"CLI exited early: {lines}"
            lines.append(line.rstrip("\n"))
        base_url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
        conn_line = next(line for line in lines if line.startswith("AIRFLOW_CONN_PARTNEROS_DEFAULT="))
        conn = json.loads(conn_line.split("=", 1)[1].strip("'"))
        assert conn["host"] == base_url
        assert conn["login"] == DEMO_EMAIL
        assert conn["password"] == DEMO_PASSWORD
        resp = requests.post(
            base_url + SIGN_IN, json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}, timeout=TIMEOUT
        )
        assert resp.status_code == 200
        proc.terminate()
        # Generous: this asserts a clean exit on SIGTERM, not its speed (seen over 5 s on a loaded machine).
        assert proc.wait(60) == 0
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_plugin_connection_fixture_points_airflow_at_the_server(
    partneros_connection: str, partneros_server: PartnerOSStandIn
) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_PARTNEROS_DEFAULT"])
    assert partneros_connection == "partneros_default"
    assert conn == {
        "conn_type": "partneros",
        "host": partneros_server.base_url,
        "login": DEMO_EMAIL,
        "password": DEMO_PASSWORD,
        "extra": {"timeout": 5},
    }


@pytest.fixture
def two_servers() -> Iterator[tuple[PartnerOSStandIn, PartnerOSStandIn]]:
    with PartnerOSStandIn() as a, PartnerOSStandIn() as b:
        yield a, b


def test_servers_are_independent(two_servers: tuple[PartnerOSStandIn, PartnerOSStandIn]) -> None:
    a, b = two_servers
    a.seed_demo()
    assert raw_sign_in(a).status_code == 200
    assert raw_sign_in(b).status_code == 401
    assert a.base_url != b.base_url
