"""Provider metadata read by Airflow's ProvidersManager, and the single source of the connection form.

Airflow 3.2+ builds the "add connection" form from ``conn-fields`` and ``ui-field-behaviour``
here; the hook deliberately has no ``get_connection_form_widgets``. Defaults shown in the form
are the ones :mod:`airflow_provider_partneros._connection.settings` applies, both read from
:mod:`airflow_provider_partneros._connection.defaults` so they cannot drift. This module must stay
cheap to import: Airflow loads it in every component.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_partneros import __version__
from airflow_provider_partneros._connection.defaults import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_SESSION_MAX_AGE,
    DEFAULT_SESSION_SHARING,
    DEFAULT_TIMEOUT,
    MIN_SESSION_MAX_AGE,
)

CONN_TYPE = "partneros"


def get_provider_info() -> dict[str, Any]:
    """Return the provider info dict (validated against Airflow's provider_info schema in tests)."""
    return {
        "package-name": "airflow-provider-partneros",
        "name": "PartnerOS",
        "description": "Sign in to PartnerOS, gate pipelines on CRM integrations, enrich partners and "
        "generate AI profiles.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "PartnerOS",
                "external-doc-url": "https://docs.partneros.ai",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "PartnerOS",
                "python-modules": ["airflow_provider_partneros.hooks.partneros"],
            }
        ],
        "operators": [
            {
                "integration-name": "PartnerOS",
                "python-modules": [
                    "airflow_provider_partneros.operators.partneros",
                    "airflow_provider_partneros.operators.batch",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "PartnerOS",
                "python-modules": ["airflow_provider_partneros.sensors.integration"],
            }
        ],
        "triggers": [
            {
                "integration-name": "PartnerOS",
                "python-modules": [
                    "airflow_provider_partneros.triggers.integration",
                    "airflow_provider_partneros.triggers.integration_synced",
                ],
            }
        ],
        "asset-uris": [
            {
                "schemes": ["partneros"],
                "handler": "airflow_provider_partneros.assets.normalize_uri",
                "factory": "airflow_provider_partneros.assets.create_asset",
                "to_openlineage_converter": "airflow_provider_partneros.assets.convert_asset_to_openlineage",
            }
        ],
        "config": {
            "partneros": {
                "description": "Settings of the PartnerOS provider.",
                "options": {
                    "session_dir": {
                        "description": "Directory of the host-wide PartnerOS session store: the task "
                        "processes and triggerers of one host (same OS user) that use the same credentials "
                        "share one signed-in session through it. Created 0700; refused (each task then "
                        "signs in on its own, with a warning) if another user owns it, others can read or "
                        "write it, or it is a symlink. Empty: $XDG_RUNTIME_DIR/airflow-partneros, else "
                        "<temp dir>/airflow-partneros-<uid>. Containers that should share a session (e.g. "
                        "KubernetesExecutor pods of one node) can point it at a shared volume with working "
                        "POSIX file locks.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/run/airflow/partneros-sessions",
                        "default": "",
                    },
                    "session_linger": {
                        "description": "Seconds a shared session no task uses any more is kept for the "
                        "host's next task before a small steward process signs it out (tasks that follow "
                        "each other then share one sign-in). 0: the last task out signs it out at once. "
                        "A session is never used past its connection's session_max_age either way.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "0",
                        "default": "60",
                    },
                    "session_store_conn_id": {
                        "description": "An Airflow connection of type redis (host, port, password, the "
                        'database as {"db": N} and TLS as {"ssl": true, "ssl_cert_reqs": ..., '
                        '"ssl_ca_certs": ...} in the extra) for a deployment-wide PartnerOS session store: '
                        "every task, sensor and triggerer of the deployment that uses the same credentials "
                        "shares one signed-in session, whatever the number of hosts. Needs the extra "
                        "airflow-provider-partneros[redis]. Records are encrypted under a key derived from "
                        "the PartnerOS credentials; key names reveal no user, organization or URL. While "
                        "Redis fails, tasks fall back to the host's store (session_dir). Empty: the host's "
                        "store only.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "partneros_redis",
                        "default": "",
                    },
                },
            },
        },
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_partneros.hooks.partneros.PartnerOSHook",
                "hook-name": "PartnerOS",
                "conn-fields": {
                    "organization_id": {
                        "label": "Organization ID",
                        "description": "Optional. Made the session's active organization after sign-in; "
                        "needed when the user belongs to several organizations.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per request. Bounds connecting, every read and the whole answer.",
                        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT, "minimum": 0.1},
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "true (default), false, or the path of a CA bundle. Wins over "
                        "REQUESTS_CA_BUNDLE and similar environment variables.",
                        "schema": {"type": ["string", "null"], "default": "true"},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries inside one call for 429, 502/503/504 and network errors.",
                        "schema": {"type": ["integer", "null"], "default": DEFAULT_MAX_RETRIES, "minimum": 0},
                    },
                    "retry_backoff": {
                        "label": "Retry backoff (seconds)",
                        "description": "Base of the exponential backoff (with jitter) between retries.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": DEFAULT_RETRY_BACKOFF,
                            "minimum": 0,
                        },
                    },
                    "session_sharing": {
                        "label": "Share the session per host",
                        "description": "Tasks and triggers on one host that use these credentials share one "
                        "signed-in session (PartnerOS allows 3 sign-ins per 10 s per IP). Off: every task "
                        "signs in and out on its own.",
                        "schema": {"type": ["boolean", "null"], "default": DEFAULT_SESSION_SHARING},
                    },
                    "session_max_age": {
                        "label": "Shared session max age (seconds)",
                        "description": "A shared session is replaced by a fresh sign-in once it is this old; "
                        "the replaced one is signed out when no task uses it any more.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": DEFAULT_SESSION_MAX_AGE,
                            "minimum": MIN_SESSION_MAX_AGE,
                        },
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"host": "Base URL", "login": "Email"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "login": "you@example.com",
                        "password": "PartnerOS password",
                        "organization_id": "leave empty to use the session's active organization",
                        "verify": "true | false | /path/to/ca-bundle.pem",
                    },
                },
            }
        ],
    }
