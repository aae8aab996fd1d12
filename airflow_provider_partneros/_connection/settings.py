"""Turn an Airflow Connection into validated :class:`PartnerOSSettings`.

Kept apart from the hook so the sync hook, the async trigger and the connection form
(:mod:`airflow_provider_partneros.get_provider_info`) share one parser and one set of defaults.
Every error names the connection and the field, never a secret's value.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_partneros._connection.defaults import (
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_SESSION_MAX_AGE,
    DEFAULT_SESSION_SHARING,
    DEFAULT_TIMEOUT,
    MIN_SESSION_MAX_AGE,
)
from airflow_provider_partneros.exceptions import PartnerOSConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONN_ID",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_TIMEOUT",
    "PartnerOSSettings",
    "settings_from_airflow_connection",
    "settings_from_connection",
]

KNOWN_EXTRAS = frozenset(
    {
        "organization_id",
        "timeout",
        "verify",
        "max_retries",
        "retry_backoff",
        "session_sharing",
        "session_max_age",
    }
)
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class PartnerOSSettings:
    """Everything a transport needs to talk to one PartnerOS account; plain values only."""

    conn_id: str
    base_url: str
    email: str | None
    password: str | None = field(repr=False)
    organization_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    session_sharing: bool = DEFAULT_SESSION_SHARING
    """Share one session per host with every task and trigger of the same identity (the store)."""
    session_max_age: float = DEFAULT_SESSION_MAX_AGE
    """Seconds a shared session is used before a fresh sign-in replaces it."""
    patient_sign_in: bool = True
    """Wait out the sign-in rate limit (see ``_protocol.sign_in_patience``); off for the UI's Test."""
    warnings: tuple[str, ...] = ()

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the base URL: what the Origin header must say."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def session_key(self) -> str:
        """Identifies one signed-in identity, so triggers can share a session safely.

        Two connections share a session only if every value that shapes it is equal; the password
        enters as a hash so the key can be logged or used as a dict key without leaking it.
        """
        digest = hashlib.sha256(f"{self.password}".encode()).hexdigest()[:16]
        return "|".join(
            [self.base_url, self.email or "", digest, self.organization_id or "", str(self.verify)]
        )

    def identity_json(self) -> str:
        """Every value that shapes a session, password included: session stores key their entries by a
        keyed hash of this (never by the text itself), so another user or password never shares one."""
        return json.dumps([self.base_url, self.email, self.organization_id, str(self.verify), self.password])

    def with_overrides(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        session_sharing: bool | None = None,
        patient_sign_in: bool | None = None,
    ) -> PartnerOSSettings:
        """Return a copy with per-call limits (e.g. ``test_connection``'s short timeout, no retries)."""
        return replace(
            self,
            timeout=self.timeout if timeout is None else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            session_sharing=self.session_sharing if session_sharing is None else session_sharing,
            patient_sign_in=self.patient_sign_in if patient_sign_in is None else patient_sign_in,
        )

    def require_credentials(self) -> tuple[str, str]:
        """Email and password for sign-in, or a clear configuration error."""
        if not self.email:
            raise PartnerOSConfigError(
                f"Airflow connection {self.conn_id!r} has no login: set it to the PartnerOS user's email."
            )
        if not self.password:
            raise PartnerOSConfigError(
                f"Airflow connection {self.conn_id!r} has no password: set the PartnerOS user's password."
            )
        return self.email, self.password


def settings_from_connection(
    *,
    conn_id: str,
    host: str | None,
    login: str | None,
    password: str | None,
    schema: str | None = None,
    port: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> PartnerOSSettings:
    """Validate an Airflow Connection's fields (URI, JSON or UI form) into settings."""
    extra = dict(extra or {})
    warnings: list[str] = []
    unknown = sorted(set(extra) - KNOWN_EXTRAS)
    if unknown:
        warnings.append(
            f"Airflow connection {conn_id!r} has extras PartnerOS does not use: {', '.join(unknown)}."
        )
    base_url = _base_url(conn_id, host, schema, port)
    if urlsplit(base_url).scheme == "http" and not _is_local(urlsplit(base_url).hostname or ""):
        warnings.append(
            f"Airflow connection {conn_id!r} uses plain http:// for a non-local host: the password and "
            "session cookie travel unencrypted. Use https:// outside local testing."
        )
    org = extra.get("organization_id")
    if org is not None and not isinstance(org, str):
        raise PartnerOSConfigError(
            f"Airflow connection {conn_id!r}: extra 'organization_id' must be a string, "
            f"got {type(org).__name__}."
        )
    return PartnerOSSettings(
        conn_id=conn_id,
        base_url=base_url,
        email=(login or "").strip() or None,
        password=password or None,
        organization_id=(org or "").strip() or None,
        timeout=_number(conn_id, extra, "timeout", DEFAULT_TIMEOUT, minimum=0.1),
        verify=_verify(conn_id, extra.get("verify", True)),
        max_retries=int(_number(conn_id, extra, "max_retries", DEFAULT_MAX_RETRIES, minimum=0, integer=True)),
        retry_backoff=_number(conn_id, extra, "retry_backoff", DEFAULT_RETRY_BACKOFF, minimum=0),
        session_sharing=_flag(conn_id, extra, "session_sharing", DEFAULT_SESSION_SHARING),
        session_max_age=_number(
            conn_id, extra, "session_max_age", DEFAULT_SESSION_MAX_AGE, minimum=MIN_SESSION_MAX_AGE
        ),
        warnings=tuple(warnings),
    )


def read_airflow_connection(conn_id: str) -> PartnerOSSettings:
    """Look the Airflow connection up (sync: tasks and DAG parse, never an event loop) and parse it.

    The one place that does both at DAG parse: the asset name and lineage read a connection here.
    Raises what the lookup or the parser raises; callers decide what a failure means to them.
    """
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return settings_from_airflow_connection(conn_id, conn, conn.extra_dejson)


def settings_from_airflow_connection(conn_id: str, conn: Any, extra: Mapping[str, Any]) -> PartnerOSSettings:
    """:func:`settings_from_connection` for an Airflow ``Connection`` (its extras already decoded, so
    the async path can decode them without blocking)."""
    return settings_from_connection(
        conn_id=conn_id,
        host=conn.host,
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        port=conn.port,
        extra=extra,
    )


def _base_url(conn_id: str, host: str | None, schema: str | None, port: int | None) -> str:
    raw = (host or "").strip() or DEFAULT_BASE_URL
    if "://" not in raw:
        # URI-form connections cannot carry a scheme in host; like HttpHook, `schema` may name it.
        scheme = (schema or "").strip().lower() or "https"
        raw = f"{scheme}://{raw}"
    try:
        parts = urlsplit(raw)
        parsed_port = parts.port
    except ValueError as err:
        raise PartnerOSConfigError(
            f"Airflow connection {conn_id!r}: host {raw!r} is not a valid base URL ({err})."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PartnerOSConfigError(
            f"Airflow connection {conn_id!r}: host {raw!r} is not a valid base URL; expected e.g. "
            f"{DEFAULT_BASE_URL} (http:// only for local testing)."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise PartnerOSConfigError(
            f"Airflow connection {conn_id!r}: the base URL must not carry credentials, a query or a "
            "fragment; put the email in login and the password in password."
        )
    netloc = parts.netloc
    if port and parsed_port is None:
        netloc = f"{netloc}:{int(port)}"
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]  # tolerate a base URL that already names /api
    return f"{parts.scheme}://{netloc}{path}"


def _is_local(hostname: str) -> bool:
    if hostname in ("localhost",) or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _number(
    conn_id: str,
    extra: Mapping[str, Any],
    name: str,
    default: float,
    *,
    minimum: float,
    integer: bool = False,
) -> float:
    value = extra.get(name)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
        if integer and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise PartnerOSConfigError(
            f"Airflow connection {conn_id!r}: extra {name!r} must be {kind}, got {value!r}."
        ) from None
    if not math.isfinite(number) or number < minimum:
        raise PartnerOSConfigError(
            f"Airflow connection {conn_id!r}: extra {name!r} must be at least {minimum}, got {value!r}."
        )
    return number


def _flag(conn_id: str, extra: Mapping[str, Any], name: str, default: bool) -> bool:
    value = extra.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise PartnerOSConfigError(
        f"Airflow connection {conn_id!r}: extra {name!r} must be true or false, got {value!r}."
    )


def _verify(conn_id: str, value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE or lowered == "":
            return True
        if lowered in _FALSE:
            return False
        path = os.path.expanduser(value.strip())
        if not os.path.exists(path):
            raise PartnerOSConfigError(
                f"Airflow connection {conn_id!r}: extra 'verify' is neither true/false nor an existing "
                f"CA bundle path ({value!r} does not exist)."
            )
        return path
    raise PartnerOSConfigError(
        f"Airflow connection {conn_id!r}: extra 'verify' must be true, false or a CA bundle path, "
        f"got {type(value).__name__}."
    )
