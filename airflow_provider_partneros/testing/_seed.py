"""The demo data: the names tests and DAGs refer to, and :func:`seed_demo`, which creates it through
the stand-in's public scripting API (so it doubles as an example of that API).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

DEMO_ORG_ID = "org-demo"
DEMO_ORG_NAME = "Demo Org"
OTHER_ORG_ID = "org-other"
OTHER_ORG_NAME = "Other Org"
DEMO_EMAIL = "demo@partneros.test"
DEMO_PASSWORD = "demo-Passw0rd!"
"""Every demo user shares this password."""
PARTNER_EMAIL = "partner@partneros.test"
NOORG_EMAIL = "noorg@partneros.test"
UNVERIFIED_EMAIL = "unverified@partneros.test"
DEMO_SALESFORCE_CONNECTION = "conn_salesforce_demo"
DEMO_HUBSPOT_CONNECTION = "conn_hubspot_demo"
DEMO_BROKEN_CONNECTION = "conn_broken_demo"
OTHER_ORG_CONNECTION = "conn_other_org"
DEMO_PARTNER_IDS = ("partner-1", "partner-2", "partner-3", "partner-4", "partner-5")
OTHER_ORG_PARTNER_ID = "partner-other-1"
DEMO_APPLICATION_SLUG = "demo-partner-program"


class Seedable(Protocol):
    """The part of the stand-in's scripting API the demo data uses (``PartnerOSStandIn`` has it).

    A protocol rather than an import of the stand-in, which imports this module.
    """

    clock: Callable[[], float]

    def add_organization(self, *args: Any, **kwargs: Any) -> object: ...
    def add_user(self, *args: Any, **kwargs: Any) -> object: ...
    def add_integration(self, *args: Any, **kwargs: Any) -> object: ...
    def add_partner(self, *args: Any, **kwargs: Any) -> object: ...
    def add_application_form(self, *args: Any, **kwargs: Any) -> object: ...


def seed_demo(server: Seedable) -> None:
    """Create the demo organizations, users, integrations, partners and application form."""
    now = datetime.fromtimestamp(server.clock(), tz=timezone.utc)
    server.add_organization(DEMO_ORG_ID, DEMO_ORG_NAME)
    server.add_organization(OTHER_ORG_ID, OTHER_ORG_NAME, ai_quota=0)
    server.add_user(DEMO_EMAIL, DEMO_PASSWORD, role="admin", organizations=[DEMO_ORG_ID], name="Demo Admin")
    server.add_user(
        PARTNER_EMAIL, DEMO_PASSWORD, role="partner", organizations=[DEMO_ORG_ID], name="Demo Partner"
    )
    server.add_user(
        NOORG_EMAIL,
        DEMO_PASSWORD,
        role="member",
        organizations=[DEMO_ORG_ID, OTHER_ORG_ID],
        active_organization=None,
        name="No Org Member",
    )
    server.add_user(
        UNVERIFIED_EMAIL,
        DEMO_PASSWORD,
        role="admin",
        organizations=[DEMO_ORG_ID],
        email_verified=False,
        name="Unverified Admin",
    )
    server.add_integration(
        DEMO_SALESFORCE_CONNECTION,
        organization=DEMO_ORG_ID,
        platform="salesforce",
        last_sync_at=now - timedelta(minutes=5),
        instance_url="https://partneros-demo.my.salesforce.com",
    )
    server.add_integration(
        DEMO_HUBSPOT_CONNECTION,
        organization=DEMO_ORG_ID,
        platform="hubspot",
        last_sync_at=now - timedelta(hours=1),
    )
    server.add_integration(
        DEMO_BROKEN_CONNECTION,
        organization=DEMO_ORG_ID,
        platform="salesforce",
        status="error",
        last_sync_at=now - timedelta(days=3),
        last_error_at=now - timedelta(minutes=10),
        last_error_message="INVALID_SESSION_ID: Session expired or invalid",
    )
    server.add_integration(OTHER_ORG_CONNECTION, organization=OTHER_ORG_ID, platform="salesforce")
    names = [
        ("Acme Consulting", "acme-consulting.example"),
        ("Globex Systems", "globex.example"),
        ("Initech Partners", "initech.example"),
        ("Umbrella Integrations", "umbrella.example"),
        ("Stark Solutions", "stark-solutions.example"),
    ]
    for pid, (name, domain) in zip(DEMO_PARTNER_IDS, names, strict=True):
        server.add_partner(pid, organization=DEMO_ORG_ID, name=name, domain=domain)
    server.add_partner(OTHER_ORG_PARTNER_ID, organization=OTHER_ORG_ID, name="Hooli", domain="hooli.example")
    server.add_application_form(DEMO_APPLICATION_SLUG, organization=DEMO_ORG_ID)
