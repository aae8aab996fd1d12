"""Test support for the PartnerOS provider: a stand-in PartnerOS server and its pytest fixtures.

Use it to test DAGs against the real wire protocol without a PartnerOS account::

    from airflow_provider_partneros.testing import Fault, PartnerOSStandIn

    with PartnerOSStandIn() as server:
        server.seed_demo()
        server.inject(Fault.html_bad_gateway("/api/integrations/*/status"))
        ...

Or, with pytest, request the ``partneros_server`` / ``partneros_connection`` fixtures. Run
``python -m airflow_provider_partneros.testing`` for a long-running server seeded with demo data.
This package never imports Airflow.

Where things are: :mod:`.standin` is the server and its scripting and observation API (start
there), :mod:`.faults` the faults it can inject; the underscore modules are its parts (see the
:mod:`.standin` docstring).
"""

from __future__ import annotations

from airflow_provider_partneros._connection.defaults import DEFAULT_CONN_ID
from airflow_provider_partneros.testing._model import RequestRecord
from airflow_provider_partneros.testing._seed import (
    DEMO_APPLICATION_SLUG,
    DEMO_BROKEN_CONNECTION,
    DEMO_EMAIL,
    DEMO_HUBSPOT_CONNECTION,
    DEMO_ORG_ID,
    DEMO_ORG_NAME,
    DEMO_PARTNER_IDS,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    NOORG_EMAIL,
    OTHER_ORG_CONNECTION,
    OTHER_ORG_ID,
    OTHER_ORG_NAME,
    OTHER_ORG_PARTNER_ID,
    PARTNER_EMAIL,
    UNVERIFIED_EMAIL,
)
from airflow_provider_partneros.testing._wire import iso
from airflow_provider_partneros.testing.faults import FAULT_KINDS, Fault
from airflow_provider_partneros.testing.standin import PartnerOSStandIn
from airflow_provider_partneros.testing.tls import TLSFiles, make_self_signed

__all__ = [
    "DEFAULT_CONN_ID",
    "DEMO_APPLICATION_SLUG",
    "DEMO_BROKEN_CONNECTION",
    "DEMO_EMAIL",
    "DEMO_HUBSPOT_CONNECTION",
    "DEMO_ORG_ID",
    "DEMO_ORG_NAME",
    "DEMO_PARTNER_IDS",
    "DEMO_PASSWORD",
    "DEMO_SALESFORCE_CONNECTION",
    "FAULT_KINDS",
    "NOORG_EMAIL",
    "OTHER_ORG_CONNECTION",
    "OTHER_ORG_ID",
    "OTHER_ORG_NAME",
    "OTHER_ORG_PARTNER_ID",
    "PARTNER_EMAIL",
    "UNVERIFIED_EMAIL",
    "Fault",
    "PartnerOSStandIn",
    "RequestRecord",
    "TLSFiles",
    "iso",
    "make_self_signed",
]
