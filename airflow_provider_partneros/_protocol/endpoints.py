"""What a request may ask for: the paths, methods and ids PartnerOS knows, checked before anything is sent.

Split from :mod:`.flows` so the checks a DAG file runs at parse (an operator's ``endpoint``, ``method``
and ids) need neither the flows nor the settings: importing this module costs next to nothing.
:mod:`.flows` builds every request from these.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from airflow_provider_partneros.exceptions import PartnerOSConfigError

SIGN_IN_PATH = "/api/auth/sign-in/email"
SIGN_OUT_PATH = "/api/auth/sign-out"
GET_SESSION_PATH = "/api/auth/get-session"
SET_ACTIVE_ORG_PATH = "/api/auth/organization/set-active"

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALLOWED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
SESSION_ENDPOINTS = ("/api/auth/sign-in", "/api/auth/sign-out")
"""Path prefixes of the session's own endpoints: the hook signs in and out; a caller never does."""


def path(*segments: str) -> str:
    """Build an ``/api/...`` path from segments, each URL-encoded so an id can never change the path.

    ``path("api", "integrations", "a/b c")`` -> ``/api/integrations/a%2Fb%20c``. A segment that is
    ``.`` or ``..`` is refused: encoding it as ``%2E`` does not help, because ``requests`` decodes
    unreserved characters again (``/x/%2E%2E/status`` goes out as ``/x/../status``, which any
    normalizing proxy or server resolves to ``/status``).
    """
    out = []
    for segment in segments:
        if segment in (".", ".."):
            raise PartnerOSConfigError(
                f"{segment!r} cannot be used as an id: it would change the request's path."
            )
        out.append(quote(segment, safe=""))
    return "/" + "/".join(out)


def require_id(name: str, value: Any) -> str:
    """Ids are opaque: any non-empty string (the docs show both UUIDs and ``conn_01hx...``)."""
    if not isinstance(value, str) or not value.strip():
        raise PartnerOSConfigError(f"{name} must be a non-empty string, got {value!r}.")
    return value


def normalize_endpoint(endpoint: str) -> str:
    """A caller's endpoint is a path on the PartnerOS host, never another URL the cookie could follow."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise PartnerOSConfigError(f"endpoint must be a non-empty path such as '/api/...', got {endpoint!r}.")
    endpoint = endpoint.strip()
    parts = urlsplit(endpoint)
    if parts.scheme or parts.netloc or endpoint.startswith("//"):
        raise PartnerOSConfigError(
            f"endpoint {endpoint!r} must be a path on the connection's base URL (e.g. '/api/partners'), "
            "not a full URL: the session cookie is only ever sent to the PartnerOS host."
        )
    # Decoded first: requests turns %2E back into "." before sending.
    if any(unquote(seg) in (".", "..") for seg in endpoint.split("?")[0].split("/")):
        raise PartnerOSConfigError(f"endpoint {endpoint!r} must not contain '.' or '..' segments.")
    return endpoint if endpoint.startswith("/") else "/" + endpoint


def check_json_serializable(what: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise PartnerOSConfigError(f"{what} must be JSON-serializable: {err}.") from None


def is_session_endpoint(endpoint: str) -> bool:
    """Whether a normalized endpoint is a sign-in or sign-out (whose answers hold session secrets)."""
    return endpoint.split("?")[0].rstrip("/").startswith(SESSION_ENDPOINTS)


__all__ = [
    "ALLOWED_METHODS",
    "GET_SESSION_PATH",
    "IDEMPOTENT_METHODS",
    "SESSION_ENDPOINTS",
    "SET_ACTIVE_ORG_PATH",
    "SIGN_IN_PATH",
    "SIGN_OUT_PATH",
    "STATE_CHANGING_METHODS",
    "check_json_serializable",
    "is_session_endpoint",
    "normalize_endpoint",
    "path",
    "require_id",
]
