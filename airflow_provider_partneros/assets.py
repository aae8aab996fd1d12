"""The ``partneros`` asset scheme: one spelling per PartnerOS object, and its OpenLineage dataset.

An asset URI names *data*, and OpenLineage names a dataset by its source (namespace
``scheme://authority``) and its path (name). So the authority is the PartnerOS host and the first path
segment the organization every call is scoped to, never an Airflow connection id (two deployments
reading one integration through differently named connections must meet on one dataset):

    partneros://app.partneros.com/<organization>/integrations/<connection id>
    partneros://app.partneros.com/<organization>/partners/<partner id>
    partneros://app.partneros.com/<organization>/icp/<company>

The OpenLineage dataset of such an asset is namespace ``partneros://<host>``, name
``<organization>/<kind>/<id>`` (:func:`convert_asset_to_openlineage`); the operators' facets
(:mod:`airflow_provider_partneros.lineage`) build the same two strings through :func:`asset_uri`.

Registered in the provider info (``asset-uris``): :func:`normalize_uri` is the handler Airflow calls for
every ``partneros://`` asset, :func:`create_asset` the factory. Not to be confused with the *connection*
URI form ``partneros://user:password@host/?extra`` of ``AIRFLOW_CONN_*`` (docs/lineage.md): an asset URI
never carries credentials, a query or a port-less guess; the handler refuses those.

Stdlib only at import: Airflow loads this module in every component that normalises an asset.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Asset

SCHEME = "partneros"
DEFAULT_HOST = "app.partneros.com"
"""The PartnerOS service's host (``https://app.partneros.com``)."""
KINDS = ("integrations", "partners", "icp")
"""What a ``partneros://`` asset can name: a CRM integration, a partner record, an ICP document."""
ACTIVE_ORGANIZATION = "_"
"""The organization segment when the connection sets no ``organization_id``: the session's active one
(knowing which would cost a request; set ``organization_id`` to get names scoped to it)."""
_DEFAULT_PORTS = {"https": 443, "http": 80}
_SHAPE = "partneros://<host>/<organization>/<integrations|partners|icp>/<id>"


class InvalidPartnerOSUri(ValueError):
    """A ``partneros://`` asset URI that does not name one PartnerOS object (the message says why)."""


def host_of(base_url: str) -> str:
    """The authority of a PartnerOS base URL: lower-case host, the port only when not the default."""
    parts = urllib.parse.urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidPartnerOSUri(f"PartnerOS base URL {base_url!r} has no host.")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def _segment(value: str) -> str:
    """One path segment, percent-encoded one way only (``%7e`` and ``~`` are one spelling)."""
    return urllib.parse.quote(urllib.parse.unquote(value), safe="")


def asset_uri(kind: str, object_id: str, *, organization: str | None, host: str = DEFAULT_HOST) -> str:
    """The normalised ``partneros://`` URI of one PartnerOS object (see the module docstring)."""
    if kind not in KINDS:
        raise InvalidPartnerOSUri(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    if not isinstance(object_id, str) or not object_id.strip():
        raise InvalidPartnerOSUri(f"a PartnerOS {kind} id must be a non-empty string, got {object_id!r}.")
    org = organization.strip() if isinstance(organization, str) and organization.strip() else None
    path = f"/{_segment(org or ACTIVE_ORGANIZATION)}/{kind}/{_segment(object_id.strip())}"
    return urllib.parse.urlunsplit(normalize_uri(urllib.parse.SplitResult(SCHEME, host, path, "", "")))


def normalize_uri(parsed: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    """Airflow's handler for ``partneros://`` assets: one spelling per object, or a clear refusal.

    Airflow has already lower-cased the scheme, dropped a fragment and trailing slashes, and dropped
    user info that held a password. This lower-cases the host, drops a default port, re-encodes each
    path segment one way and lower-cases the kind; it refuses user info, a query, and any path that is
    not ``/<organization>/<kind>/<id>``.
    """
    shown = urllib.parse.urlunsplit(parsed)
    if parsed.scheme.lower() != SCHEME:
        raise InvalidPartnerOSUri(f"{shown!r} is not a {SCHEME}:// URI.")
    if "@" in parsed.netloc:
        raise InvalidPartnerOSUri(
            f"PartnerOS asset URI {shown!r} carries user info: an asset URI names data, never credentials "
            f"(the connection URI form lives in AIRFLOW_CONN_*, not in assets). Expected {_SHAPE}."
        )
    if parsed.query:
        raise InvalidPartnerOSUri(
            f"PartnerOS asset URI {shown!r} has a query ({parsed.query!r}); assets take none. "
            f"Expected {_SHAPE}."
        )
    try:
        host = host_of(f"https://{parsed.netloc}") if parsed.netloc else ""
    except ValueError:  # e.g. a non-numeric port
        host = ""
    if not host:
        raise InvalidPartnerOSUri(
            f"PartnerOS asset URI {shown!r} has no valid host (the PartnerOS service, e.g. {DEFAULT_HOST}). "
            f"Expected {_SHAPE}."
        )
    segments = parsed.path.split("/")[1:] if parsed.path.startswith("/") else []
    if len(segments) != 3 or not all(urllib.parse.unquote(s).strip() for s in segments):
        raise InvalidPartnerOSUri(
            f"PartnerOS asset URI {shown!r} must have exactly three path segments, expected {_SHAPE} "
            "(URL-encode a '/' inside an id as %2F)."
        )
    organization, kind, object_id = segments
    if kind.lower() not in KINDS:
        if organization.lower() == "integrations":
            raise InvalidPartnerOSUri(
                f"{shown!r} is the old partneros://<Airflow connection id>/integrations/<id>/synced form; "
                f"assets are now named by their data source: {_SHAPE} (integration_synced_uri() builds it)."
            )
        raise InvalidPartnerOSUri(
            f"PartnerOS asset URI {shown!r} names kind {kind!r}; expected one of {', '.join(KINDS)}: "
            f"{_SHAPE}."
        )
    path = f"/{_segment(organization)}/{kind.lower()}/{_segment(object_id)}"
    return urllib.parse.SplitResult(SCHEME, host, path, "", "")


def create_asset(
    *,
    kind: str = "integrations",
    id: str,
    organization: str | None = None,
    host: str = DEFAULT_HOST,
    extra: Mapping[str, Any] | None = None,
) -> Asset:
    """Airflow's factory for ``partneros://`` assets (e.g. for hook-level lineage): the URI is the name."""
    from airflow.sdk import Asset

    uri = asset_uri(kind, id, organization=organization, host=host)
    return Asset(name=uri, uri=uri, extra=dict(extra or {}))


def openlineage_names(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a ``partneros://`` URI per the OpenLineage naming spec."""
    parts = normalize_uri(urllib.parse.urlsplit(uri))
    return f"{SCHEME}://{parts.netloc}", parts.path.lstrip("/")


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """Airflow's OpenLineage converter: a ``partneros://`` asset as an OpenLineage ``Dataset``.

    Imports the OpenLineage provider's classes only when called (by that provider).
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset

    namespace, name = openlineage_names(asset.uri)
    return Dataset(namespace=namespace, name=name)


__all__ = [
    "ACTIVE_ORGANIZATION",
    "DEFAULT_HOST",
    "KINDS",
    "SCHEME",
    "InvalidPartnerOSUri",
    "asset_uri",
    "convert_asset_to_openlineage",
    "create_asset",
    "host_of",
    "normalize_uri",
    "openlineage_names",
]
