"""The stand-in's former single module, kept so ``from airflow_provider_partneros.testing.server
import ...`` keeps working. New code imports from ``airflow_provider_partneros.testing``; the
implementation lives in :mod:`.standin` and the modules it names.
"""

from __future__ import annotations

from airflow_provider_partneros.testing import *  # noqa: F403  (the public names, as before the split)
from airflow_provider_partneros.testing import __all__ as _public_names
from airflow_provider_partneros.testing._http import MAX_REQUEST_BODY
from airflow_provider_partneros.testing._model import REQUEST_LOG_SIZE, ROLES
from airflow_provider_partneros.testing._routes import SIGN_IN_ROUTE
from airflow_provider_partneros.testing.faults import FaultKind

__all__ = [
    *_public_names,
    "FaultKind",
    "MAX_REQUEST_BODY",
    "REQUEST_LOG_SIZE",
    "ROLES",
    "SIGN_IN_ROUTE",
]
