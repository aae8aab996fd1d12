"""Connection defaults, in a module with no imports.

Airflow imports ``get_provider_info`` while it initialises itself, so what that module needs must
not import airflow (which would re-enter a half-initialised package). :mod:`.settings` applies these
defaults; the connection form shows them.
"""

from __future__ import annotations

DEFAULT_CONN_ID = "partneros_default"
DEFAULT_BASE_URL = "https://app.partneros.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_BACKOFF = 1.0
DEFAULT_SESSION_SHARING = True
DEFAULT_SESSION_MAX_AGE = 900.0
"""Seconds a host-wide shared session is used before a fresh sign-in replaces it."""
MIN_SESSION_MAX_AGE = 1.0
