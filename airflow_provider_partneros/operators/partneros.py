"""Operators for every PartnerOS action: a generic API operator and typed ones with XCom results.

All operators are thin over :class:`~airflow_provider_partneros.hooks.partneros.PartnerOSHook`: the
hook signs in, retries, maps HTTP statuses to exceptions (fatal ones skip Airflow's retries) and signs
out. What the operators add is what a DAG author needs around that:

* argument checks before any HTTP call (at DAG parse for literal values, in ``execute`` for rendered
  templates), failing with :class:`~airflow_provider_partneros.exceptions.PartnerOSConfigError`;
* one hook (one session) per task try, closed (signed out) on success, on failure and in ``on_kill``;
* a JSON-serializable XCom value from which session tokens, cookies and passwords are redacted.
"""

from __future__ import annotations

import json as jsonlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._connection.defaults import DEFAULT_CONN_ID
from airflow_provider_partneros._protocol.arguments import is_lazy, is_template
from airflow_provider_partneros.exceptions import (
    PartnerOSCancelledError,
    PartnerOSConfigError,
    PartnerOSFatalError,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

REDACTED = "***"
_SECRET_KEYS = frozenset(
    {
        "token",
        "sessiontoken",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "password",
        "cookie",
        "setcookie",
        "secret",
        "clientsecret",
        "apikey",
    }
)
"""Keys (lower-case, without ``_``/``-``) whose values never reach XCom: e.g. get-session's ``token``."""


# --- argument checks ---------------------------------------------------------------------------------


def _check_literal_id(name: str, value: Any, *, optional: bool = False) -> None:
    """Check a literal id at DAG parse; templates and XComArgs are checked again after rendering."""
    if is_lazy(value) or (optional and value is None):
        return
    protocol.require_id(name, value)


def _check_json_body(what: str, value: Any, *, at_parse: bool) -> None:
    """A body must survive ``json.dumps`` exactly; at parse, lazy parts (XComArgs) are skipped."""

    def lazy_placeholder(obj: Any) -> Any:
        if at_parse and is_lazy(obj):
            return None
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    try:
        jsonlib.dumps(value, allow_nan=False, default=lazy_placeholder)
    except (TypeError, ValueError) as err:
        raise PartnerOSConfigError(
            f"{what} must be JSON-serializable (dicts, lists, strings, numbers, booleans, None): {err}."
        ) from None


def _check_mapping(name: str, value: Any, *, optional: bool = False, at_parse: bool = False) -> None:
    if (optional and value is None) or (at_parse and (is_lazy(value) or is_template(value))):
        return
    if not isinstance(value, Mapping):
        raise PartnerOSConfigError(f"{name} must be a mapping (a dict), got {type(value).__name__}.")
    _check_json_body(name, value, at_parse=at_parse)


def _check_company(value: Any, *, at_parse: bool = False) -> None:
    if at_parse and is_lazy(value):
        return
    if not isinstance(value, str) or not value.strip():
        raise PartnerOSConfigError(
            f"company must be a non-empty string (a company name or domain), got {value!r}."
        )


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` with session tokens, cookies and passwords replaced by ``***``.

    Some answers carry them (``GET /api/auth/get-session`` returns the session's token); XCom is
    readable by anyone who can see the DAG run, so they never go there.
    """
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS
            else redact_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_secrets(item) for item in value]
    return value


# --- the base class ----------------------------------------------------------------------------------


class BasePartnerOSOperator(BaseOperator):
    """Shared behaviour of every PartnerOS operator; subclasses implement :meth:`validate` and :meth:`call`.

    :param partneros_conn_id: the Airflow connection of type ``partneros`` (templated).
    """

    template_fields: Sequence[str] = ("partneros_conn_id",)
    ui_color = "#e8f1fb"

    def __init__(self, *, partneros_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not is_lazy(partneros_conn_id) and (
            not isinstance(partneros_conn_id, str) or not partneros_conn_id.strip()
        ):
            raise PartnerOSConfigError(
                f"partneros_conn_id must be a non-empty connection id, got {partneros_conn_id!r}."
            )
        self.partneros_conn_id = partneros_conn_id
        self._hook: PartnerOSHook | None = None

    def validate(self) -> None:
        """Check the rendered arguments; runs in ``execute`` before the hook is even created."""

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        """Do the work with a fresh hook and return the raw result (redacted before XCom)."""
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        # Imported here, not at module level: a DAG file imports this module at every parse, and the
        # hook brings the session store and ``requests`` (docs/architecture.md, "import cost").
        from airflow_provider_partneros.hooks.partneros import PartnerOSHook

        self.validate()
        # One hook per try: its session is signed out when the block ends, whatever happened.
        with PartnerOSHook(self.partneros_conn_id) as hook:
            self._hook = hook
            try:
                result = self.call(hook, context)
            finally:
                self._hook = None
        return redact_secrets(result)

    def on_kill(self) -> None:
        """Sign out when the task is killed, so no session outlives it on the server."""
        hook = self._hook
        if hook is not None:
            hook.close()

    def get_openlineage_facets_on_start(self) -> Any:
        """What this task reads and writes, for OpenLineage (optional provider; docs/lineage.md)."""
        from airflow_provider_partneros.lineage import operator_lineage

        return operator_lineage(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow_provider_partneros.lineage import operator_lineage

        return operator_lineage(self)


# --- the generic operator ----------------------------------------------------------------------------


class PartnerOSApiOperator(BasePartnerOSOperator):
    """Call any PartnerOS endpoint, including the documented ones without a typed operator.

    :param method: HTTP method (templated).
    :param endpoint: path on the connection's base URL, e.g. ``/api/partners/{id}/analyze`` (templated).
        URL-encode ids that may contain ``/``. Sign-in/sign-out are the hook's job and are refused.
    :param query: URL query parameters (templated); ``None`` values are dropped, lists repeat the key.
        (Not ``params``: every Airflow operator already owns that name.)
    :param json: JSON body (templated); must be JSON-serializable.
    :param response_check: ``f(response) -> bool``; ``False`` fails the task without retries.
    :param response_filter: ``f(response) -> value`` for XCom; its result must be JSON-serializable.
    :param stream: read the answer as a stream (text streams, Server-Sent Events); the XCom value is
        then the whole answer as text (UTF-8), never parsed: pass ``response_filter=json.loads`` for
        a text stream that concatenates to JSON.
    :param idempotent: may be resent after an ambiguous failure; default True for GET/PUT/DELETE.
    :param public: the endpoint needs no session: no sign-in happens.

    Without ``stream`` the XCom value is the parsed JSON answer (``None`` for an empty body). A 202
    (accepted for asynchronous processing) is logged and returns what the service sent.
    """

    template_fields: Sequence[str] = ("partneros_conn_id", "method", "endpoint", "query", "json")
    template_fields_renderers: ClassVar[dict[str, str]] = {"json": "json", "query": "json"}

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        response_check: Callable[[Any], bool] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
        public: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.method = method
        self.query = query
        self.json = json
        self.response_check = response_check
        self.response_filter = response_filter
        self.stream = stream
        self.idempotent = idempotent
        self.public = public
        for name, fn in (("response_check", response_check), ("response_filter", response_filter)):
            if fn is not None and not callable(fn):
                raise PartnerOSConfigError(f"{name} must be a callable, got {type(fn).__name__}.")
        self._check(at_parse=True)

    def _check(self, *, at_parse: bool) -> None:
        if not (at_parse and (is_lazy(self.method) or is_template(self.method))):
            method = self.method.upper() if isinstance(self.method, str) else self.method
            if method not in protocol.ALLOWED_METHODS:
                raise PartnerOSConfigError(
                    f"method must be one of {sorted(protocol.ALLOWED_METHODS)}, got {self.method!r}."
                )
        if not (at_parse and (is_lazy(self.endpoint) or is_template(self.endpoint))):
            endpoint = protocol.normalize_endpoint(self.endpoint)
            if protocol.is_session_endpoint(endpoint):
                raise PartnerOSConfigError(
                    f"endpoint {endpoint!r} is a session endpoint: the hook signs in and out by itself "
                    "(and a sign-in answer holds a session token, which must not reach XCom)."
                )
        _check_mapping("query", self.query, optional=True, at_parse=at_parse)
        if not (at_parse and is_template(self.json)):
            _check_json_body("json", self.json, at_parse=at_parse)

    def validate(self) -> None:
        self._check(at_parse=False)

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        kwargs: dict[str, Any] = {
            "params": self.query,
            "json": self.json,
            "idempotent": self.idempotent,
            "public": self.public,
        }
        if self.stream:
            parts: list[str] = []
            with hook.stream(self.method, self.endpoint, **kwargs) as chunks:
                decoder = _utf8_decoder()
                for chunk in chunks:
                    parts.append(decoder.decode(chunk))
                parts.append(decoder.decode(b"", final=True))
            response: Any = "".join(parts)
        else:
            request, reply = hook.request_raw(self.method, self.endpoint, **kwargs)
            response = protocol.parse_json(request, reply)
            if reply.status == 202:
                self.log.info(
                    "PartnerOS accepted %s %s for asynchronous processing (202); returning what it sent. "
                    "Poll the resource it names for the outcome.",
                    request.method,
                    request.endpoint,
                )
        if self.response_check is not None and not self.response_check(response):
            raise PartnerOSFatalError(
                f"response_check returned False for PartnerOS {self.method.upper()} {self.endpoint}: the "
                "service answered, but not what this task expects. Retrying would not change that.",
                method=self.method.upper(),
                endpoint=self.endpoint,
            )
        if self.response_filter is not None:
            response = self.response_filter(response)
            _check_json_body("the value response_filter returned", response, at_parse=False)
        return response


def _utf8_decoder() -> Any:
    import codecs

    # errors="replace": a stream must not fail on one bad byte; the text is for humans and parsers.
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


# --- typed operators ---------------------------------------------------------------------------------


class AnalyzePartnerOperator(BasePartnerOSOperator):
    """AI-enrich one partner (``POST /api/partners/{id}/analyze``).

    :param partner_id: the partner's id (templated; map it with ``.expand(partner_id=[...])``).

    XCom: ``{"partner": {...updated record}, "aiInsights": {...}}``.
    """

    template_fields: Sequence[str] = ("partneros_conn_id", "partner_id")

    def __init__(self, *, partner_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_literal_id("partner_id", partner_id)
        self.partner_id = partner_id

    def validate(self) -> None:
        protocol.require_id("partner_id", self.partner_id)

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        return hook.analyze_partner(self.partner_id)


class GetIntegrationSchemaOperator(BasePartnerOSOperator):
    """Read a CRM connection's cached field schema (``GET /api/integrations/{id}/schema``).

    :param connection_id: the PartnerOS CRM connection id (templated); not an Airflow connection.
    :param object_type: e.g. ``Account``: that object's fields; ``None``: a summary of every object.

    XCom: the schema exactly as the service sends it (its shape is not documented).
    """

    template_fields: Sequence[str] = ("partneros_conn_id", "connection_id", "object_type")

    def __init__(self, *, connection_id: str, object_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_literal_id("connection_id", connection_id)
        _check_literal_id("object_type", object_type, optional=True)
        self.connection_id = connection_id
        self.object_type = object_type

    def validate(self) -> None:
        protocol.require_id("connection_id", self.connection_id)
        if self.object_type is not None:
            protocol.require_id("object_type", self.object_type)

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        return hook.get_integration_schema(self.connection_id, self.object_type)


class GenerateIcpOperator(BasePartnerOSOperator):
    """Generate a company's Ideal Customer Profile with PartnerOS AI (``POST /api/ai/icp``).

    :param company: company name or domain (templated).
    :param output_path: write the streamed profile to this file (templated) instead of XCom: use it for
        big profiles, which then never sit in memory. Written to a temporary file first and renamed on
        success, so a failed stream never leaves a half document behind.

    XCom: the parsed profile; with ``output_path``, ``{"path": ..., "size_bytes": ...}``.
    Every call spends AI quota; HTTP 402 (quota exhausted) fails the task without retries.
    """

    template_fields: Sequence[str] = ("partneros_conn_id", "company", "output_path")

    def __init__(
        self, *, company: str, output_path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _check_company(company, at_parse=True)
        if output_path is not None and not is_lazy(output_path):
            _check_output_path(output_path)
        self.company = company
        self.output_path = output_path
        self._streaming = False

    def validate(self) -> None:
        _check_company(self.company)
        if self.output_path is not None:
            _check_output_path(self.output_path)

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        self._streaming = True
        try:
            return self._generate(hook)
        finally:
            self._streaming = False

    def on_kill(self) -> None:
        """Closing the hook alone would let the stream run on (an open answer is not pooled): while
        the profile streams, end the call at once by raising into it (``on_kill`` runs in the task's
        SIGTERM handler, in the thread that reads), which closes the answer; no request follows."""
        super().on_kill()
        if self._streaming:
            self._streaming = False
            raise PartnerOSCancelledError(
                f"The task was killed while PartnerOS streamed the ICP for {self.company!r}; the stream "
                "was closed and nothing was written."
            )

    def _generate(self, hook: PartnerOSHook) -> Any:
        if self.output_path is None:
            return hook.generate_icp(self.company)
        target = Path(os.fspath(self.output_path))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            size = hook.generate_icp_to_file(self.company, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        self.log.info("Wrote the ICP for %r to %s (%d bytes).", self.company, target, size)
        return {"path": str(target), "size_bytes": size}


def _check_output_path(value: Any) -> None:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise PartnerOSConfigError(f"output_path must be a non-empty file path, got {value!r}.")
    if os.fspath(value).endswith(("/", os.sep)):
        raise PartnerOSConfigError(f"output_path must name a file, not a directory: {value!r}.")


class SubmitPartnerApplicationOperator(BasePartnerOSOperator):
    """Submit a partner application to a published form (``POST /api/partners/applications/submit``).

    The endpoint is public: no sign-in happens; the connection only gives the base URL.

    :param slug: the form's public slug (templated).
    :param form_data: field -> value, satisfying the form's required fields (templated).
    :param agreements: agreement -> bool, e.g. ``{"terms": True}`` (templated).
    :param extra_body: further top-level body keys, passed through (templated); the API does not
        document its keys, so this is the escape hatch.

    XCom: the service's answer, e.g. ``{"success": true, "applicationId": "..."}``. Not resent after an
    ambiguous failure (it could create a duplicate); 409 (duplicate) fails without retries.
    """

    template_fields: Sequence[str] = ("partneros_conn_id", "slug", "form_data", "agreements", "extra_body")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "form_data": "json",
        "agreements": "json",
        "extra_body": "json",
    }

    def __init__(
        self,
        *,
        slug: str,
        form_data: Mapping[str, Any],
        agreements: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_literal_id("slug", slug)
        self.slug = slug
        self.form_data = form_data
        self.agreements = agreements
        self.extra_body = extra_body
        self._check(at_parse=True)

    def _check(self, *, at_parse: bool) -> None:
        _check_mapping("form_data", self.form_data, at_parse=at_parse)
        _check_mapping("agreements", self.agreements, optional=True, at_parse=at_parse)
        _check_mapping("extra_body", self.extra_body, optional=True, at_parse=at_parse)

    def validate(self) -> None:
        protocol.require_id("slug", self.slug)
        self._check(at_parse=False)

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        return hook.submit_partner_application(
            self.slug, self.form_data, agreements=self.agreements, extra_body=self.extra_body
        )


__all__ = [
    "AnalyzePartnerOperator",
    "BasePartnerOSOperator",
    "GenerateIcpOperator",
    "GetIntegrationSchemaOperator",
    "PartnerOSApiOperator",
    "SubmitPartnerApplicationOperator",
    "redact_secrets",
]
