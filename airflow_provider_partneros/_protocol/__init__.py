"""The PartnerOS conversation, with no I/O: what to send, what an answer means, what to decide.

* :mod:`.endpoints`: the paths, methods and ids a request may name, checked before anything is sent;
* :mod:`.flows`: requests, sign-in, statuses -> exceptions, retries and redirects, as generators
  ("flows") that a transport drives (the hook over ``requests``, the trigger session over ``httpx``);
* :mod:`.integration`: when an integration counts as ready, failed or still waiting (the sensor and
  its trigger), and :mod:`.integration_synced`: when the event watcher reports a new sync;
* :mod:`.arguments`: what a DAG author's argument is before rendering (template, XComArg).

This package exports the API of :mod:`.endpoints` and :mod:`.flows`, so transports write
``protocol.call_flow(...)``. It loads :mod:`.flows` on first use of one of its names, not on
import: a DAG file importing an operator or the sensor needs only the light modules above.
Nothing here opens a socket, sleeps or reads the clock on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_partneros._protocol.endpoints import (
    ALLOWED_METHODS,
    GET_SESSION_PATH,
    IDEMPOTENT_METHODS,
    SESSION_ENDPOINTS,
    SET_ACTIVE_ORG_PATH,
    SIGN_IN_PATH,
    SIGN_OUT_PATH,
    STATE_CHANGING_METHODS,
    check_json_serializable,
    is_session_endpoint,
    normalize_endpoint,
    path,
    require_id,
)

if TYPE_CHECKING:
    from airflow_provider_partneros._protocol.flows import (
        MAX_ERROR_BODY,
        MAX_REDIRECTS,
        MAX_RETRY_DELAY,
        SIGN_IN_JITTER,
        SIGN_IN_PATIENCE_FLOOR,
        SIGN_IN_PATIENCE_TIMEOUTS,
        USER_AGENT,
        Action,
        EnsureSession,
        ErrorBody,
        Flow,
        HttpReply,
        HttpRequest,
        RenewSession,
        Sleep,
        TransportFailure,
        TransportFailureKind,
        analyze_partner_request,
        api_request,
        application_request,
        assemble_text,
        backoff,
        call_flow,
        decode_json_document,
        error_for_reply,
        exchange,
        follow_redirect,
        get_session_request,
        icp_request,
        integration_schema_request,
        integration_status_request,
        parse_json,
        rate_limit_wait,
        read_error_body,
        require_object,
        retry_delay,
        scrub_password,
        server_retry_after,
        set_active_organization_request,
        sign_in_flow,
        sign_in_patience,
        sign_in_request,
        sign_out_request,
        transport_error,
    )

__all__ = [
    "ALLOWED_METHODS",
    "GET_SESSION_PATH",
    "IDEMPOTENT_METHODS",
    "MAX_ERROR_BODY",
    "MAX_REDIRECTS",
    "MAX_RETRY_DELAY",
    "SESSION_ENDPOINTS",
    "SET_ACTIVE_ORG_PATH",
    "SIGN_IN_JITTER",
    "SIGN_IN_PATH",
    "SIGN_IN_PATIENCE_FLOOR",
    "SIGN_IN_PATIENCE_TIMEOUTS",
    "SIGN_OUT_PATH",
    "STATE_CHANGING_METHODS",
    "USER_AGENT",
    "Action",
    "EnsureSession",
    "ErrorBody",
    "Flow",
    "HttpReply",
    "HttpRequest",
    "RenewSession",
    "Sleep",
    "TransportFailure",
    "TransportFailureKind",
    "analyze_partner_request",
    "api_request",
    "application_request",
    "assemble_text",
    "backoff",
    "call_flow",
    "check_json_serializable",
    "decode_json_document",
    "error_for_reply",
    "exchange",
    "follow_redirect",
    "get_session_request",
    "icp_request",
    "integration_schema_request",
    "integration_status_request",
    "is_session_endpoint",
    "normalize_endpoint",
    "parse_json",
    "path",
    "rate_limit_wait",
    "read_error_body",
    "require_id",
    "require_object",
    "retry_delay",
    "scrub_password",
    "server_retry_after",
    "set_active_organization_request",
    "sign_in_flow",
    "sign_in_patience",
    "sign_in_request",
    "sign_out_request",
    "transport_error",
]


if not TYPE_CHECKING:  # hidden from mypy, which then checks every name against the imports above

    def __getattr__(name: str) -> Any:
        """The flows' names, loaded on first use and then kept here (later lookups are plain)."""
        if name not in __all__:  # first: the import below asks this function about "flows" itself
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from airflow_provider_partneros._protocol import flows

        value = getattr(flows, name)
        globals()[name] = value
        return value
