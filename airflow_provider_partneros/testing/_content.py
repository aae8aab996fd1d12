"""Canned content the stand-in answers with: CRM field schemas, partner enrichment and the streamed
ICP document. Deterministic: the same partner domain or company always gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from airflow_provider_partneros.testing._wire import iso

_T = TypeVar("_T")


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def _unique_pick(seq: Sequence[_T], seed: int, n: int) -> list[_T]:
    start = seed % len(seq)
    return [seq[(start + i * 3) % len(seq)] for i in range(min(n, len(seq)))]


_F = tuple[str, str, str, bool, bool]  # name, label, type, custom, required

_SCHEMA_TABLE = """
salesforce Account: Account
    Id                  | Account ID          | id          | required
    Name                | Account Name        | string      | required
    Industry            | Industry            | picklist    |
    AnnualRevenue       | Annual Revenue      | currency    |
    NumberOfEmployees   | Employees           | int         |
    BillingCountry      | Billing Country     | string      |
    Website             | Website             | url         |
    Partner_Tier__c     | Partner Tier        | picklist    | custom
salesforce Opportunity: Opportunity
    Id                  | Opportunity ID      | id          | required
    Name                | Opportunity Name    | string      | required
    StageName           | Stage               | picklist    | required
    Amount              | Amount              | currency    |
    CloseDate           | Close Date          | date        | required
    AccountId           | Account ID          | reference   |
    Partner_Source__c   | Partner Source      | reference   | custom
salesforce Contact: Contact
    Id                  | Contact ID          | id          | required
    FirstName           | First Name          | string      |
    LastName            | Last Name           | string      | required
    Email               | Email               | email       |
    Title               | Title               | string      |
    AccountId           | Account ID          | reference   |
salesforce Lead: Lead
    Id                  | Lead ID             | id          | required
    Company             | Company             | string      | required
    Email               | Email               | email       |
    Status              | Lead Status         | picklist    | required
    LeadSource          | Lead Source         | picklist    |
    Partner_Referral__c | Partner Referral    | boolean     | custom
hubspot companies: Companies
    name                | Name                | string      | required
    domain              | Company Domain Name | string      |
    industry            | Industry            | enumeration |
    annualrevenue       | Annual Revenue      | number      |
    numberofemployees   | Number of Employees | number      |
    partner_tier        | Partner Tier        | enumeration | custom
hubspot deals: Deals
    dealname            | Deal Name           | string      | required
    dealstage           | Deal Stage          | enumeration | required
    amount              | Amount              | number      |
    closedate           | Close Date          | datetime    |
    partner_source      | Partner Source      | string      | custom
hubspot contacts: Contacts
    firstname           | First Name          | string      |
    lastname            | Last Name           | string      |
    email               | Email               | string      | required
    jobtitle            | Job Title           | string      |
"""
"""Per CRM object a line ``platform object: label``, then its fields as ``name | label | type | flags``."""


def _parse_schemas(table: str) -> dict[str, dict[str, tuple[str, list[_F]]]]:
    schemas: dict[str, dict[str, tuple[str, list[_F]]]] = {}
    fields: list[_F] = []
    for line in table.strip().splitlines():
        if not line.startswith(" "):
            head, _, label = line.partition(":")
            platform, name = head.split()
            fields = []
            schemas.setdefault(platform, {})[name] = (label.strip(), fields)
            continue
        field, field_label, field_type, flags = (part.strip() for part in line.split("|"))
        fields.append(
            (field, field_label, field_type, "custom" in flags.split(), "required" in flags.split())
        )
    return schemas


_SCHEMAS = _parse_schemas(_SCHEMA_TABLE)


_INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Logistics",
    "Professional Services",
    "Telecommunications",
)
_REGIONS = (
    "North America",
    "DACH (Zürich, München, Wien)",
    "Nordics",
    "UK & Ireland",
    "Benelux",
    "LATAM (São Paulo, Ciudad de México)",
    "APAC",
    "France",
)
_LANGUAGES = ("English", "German", "French", "Spanish", "Portuguese", "Japanese", "Dutch")
_SERVICES = (
    "CRM implementation",
    "Data migration",
    "Managed services",
    "Systems integration",
    "Training",
    "Change management",
    "Custom development",
    "Analytics",
)
_TECH = ("Salesforce", "HubSpot", "Snowflake", "dbt", "Apache Airflow", "Segment", "Slack", "Zendesk")


def schema_for(platform: str) -> dict[str, tuple[str, list[_F]]]:
    return _SCHEMAS.get(platform, _SCHEMAS["salesforce"])


def schema_stats(platform: str, synced: Any) -> dict[str, Any]:
    objects = schema_for(platform)
    return {
        "objectCount": len(objects),
        "fieldCount": sum(len(f) for _, f in objects.values()),
        "customFieldCount": sum(1 for _, f in objects.values() for x in f if x[3]),
        "lastDiscoveryAt": synced,
    }


def icp_pieces(company: str, min_size: int) -> Iterator[bytes]:
    """The ICP JSON document, produced piece by piece so a huge one never sits in memory."""
    seed = _digest("icp", company)

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    head = {
        "industry": _INDUSTRIES[seed % len(_INDUSTRIES)],
        "verticals": _unique_pick(
            (
                "B2B SaaS",
                "Fintech",
                "Insurtech",
                "Healthtech",
                "E-commerce",
                "Industrial IoT",
                "Public sector",
            ),
            seed,
            3,
        ),
        "companySize": {"min": 200, "max": 5000, "label": "Mid-market to enterprise"},
        "revenue": {"min": 20_000_000, "max": 750_000_000, "currency": "USD"},
        "regions": _unique_pick(_REGIONS, seed >> 7, 4),
        "goals": [
            "Grow partner-sourced pipeline",
            "Shorten sales cycles with co-selling",
            f"Expand {company}'s footprint in new regions",
        ],
        "painPoints": [
            "Manual partner lead routing",
            "No shared view of co-sell opportunities",
            "Attribution disputes between direct and partner teams",
        ],
    }
    signals = [
        "Hiring partner managers",
        "Recently announced a partner program",
        "Evaluating PRM platforms",
        "CRM migration in progress",
    ]
    tail = {
        "technologies": _unique_pick(_TECH, seed >> 11, 5),
        "personas": [
            {"title": "VP Partnerships", "department": "Alliances", "seniority": "VP"},
            {"title": "Head of Revenue Operations", "department": "RevOps", "seniority": "Director"},
            {"title": "Chief Revenue Officer", "department": "Sales", "seniority": "C-level"},
        ],
    }
    size = 0
    for i, (key, value) in enumerate(head.items()):
        piece = ("{" if i == 0 else ",") + f"{dump(key)}:{dump(value)}"
        data = piece.encode()
        size += len(data)
        yield data
    data = (',"buyingSignals":[' + ",".join(dump(s) for s in signals)).encode()
    size += len(data)
    yield data
    tail_bytes = ("]" + "".join(f",{dump(k)}:{dump(v)}" for k, v in tail.items()) + "}").encode()
    escaped = dump(company)[1:-1]
    n = 0
    while size + len(tail_bytes) < min_size:
        n += 1
        data = (
            f',"Signal {n:07d}: {escaped} is evaluating partner-sourced pipeline expansion across EMEA '
            "and North America; procurement is reviewing integration partners for CRM, data and "
            'AI workflow automation this quarter, with budget approved by the revenue leadership."'
        ).encode()
        size += len(data)
        yield data
    yield tail_bytes


def rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a byte stream into ``size``-byte chunks (splitting UTF-8 characters like a real stream may)."""
    buf = bytearray()
    for piece in pieces:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def partner_analysis(name: str, domain: str, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """What ``POST /api/partners/{id}/analyze`` adds to a partner record, and its ``aiInsights``."""
    seed = _digest("partner", domain)
    regions = _unique_pick(_REGIONS, seed >> 3, 2)
    fields = {
        "industry": _INDUSTRIES[seed % len(_INDUSTRIES)],
        "description": f"{name} is a partner specialising in "
        f"{_SERVICES[seed % len(_SERVICES)].lower()} for mid-market companies.",
        "employees": 50 + seed % 4950,
        "companyRevenue": (seed % 200 + 5) * 1_000_000,
        "regions": regions,
        "languages": _unique_pick(_LANGUAGES, seed >> 5, 2),
        "services": _unique_pick(_SERVICES, seed >> 9, 3),
        "analyzedAt": now,
        "updatedAt": now,
    }
    insights = {
        "summary": f"{name} is a good fit for co-selling in {regions[0]}.",
        "fitScore": 50 + seed % 50,
        "strengths": ["Established delivery team", f"Experience with {_TECH[seed % len(_TECH)]}"],
        "risks": ["Limited presence outside core regions"],
        "recommendedNextSteps": ["Schedule an enablement session", "Agree on a joint account plan"],
        "cachedUntil": iso(now + timedelta(days=7)),
    }
    return fields, insights
