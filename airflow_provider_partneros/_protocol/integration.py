"""What "the integration is ready" means, with no I/O: shared by the sensor and the trigger.

Argument checks and :func:`evaluate` live here once so poke, reschedule and deferrable modes cannot
disagree about when to stop, when to fail, or what the message says. ``pendulum`` is imported inside
functions: this module is imported when a DAG file is parsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSError,
    PartnerOSRateLimitedError,
)

if TYPE_CHECKING:
    import pendulum

KNOWN_STATUSES: tuple[str, ...] = ("active", "error", "disconnected", "reauth_required")
"""The API's documented ``status`` values for ``GET /api/integrations/{id}/status``."""
DEFAULT_TARGET_STATUSES: tuple[str, ...] = ("active",)
DEFAULT_FAILURE_STATUSES: tuple[str, ...] = ("error", "disconnected", "reauth_required")

_FIX = {
    "reauth_required": "Reconnect it in PartnerOS (Settings > Integrations) to re-authorize it",
    "disconnected": "Connect it again in PartnerOS (Settings > Integrations)",
    "error": "Check the integration in PartnerOS (Settings > Integrations) and fix the error shown there",
}
"""What a person does about each failure status; the sensor and the event trigger add their own next step."""
_EMPTY_MARKERS = frozenset({"", "none", "null"})


@dataclass(frozen=True)
class Verdict:
    """The outcome of one status check: ``done`` (stop, success), ``failed`` (stop, fail) or neither."""

    done: bool
    failed: bool
    message: str


def integration_fix(status: str) -> str:
    """The fix for an unhealthy integration status, as a clause (no final full stop)."""
    return _FIX.get(status, "Fix the integration in PartnerOS")


def require_connection_id(value: Any) -> str:
    """The PartnerOS CRM connection id: any non-empty string (the API's ids are opaque)."""
    if not isinstance(value, str) or not value.strip():
        raise PartnerOSConfigError(
            f"connection_id must be a non-empty PartnerOS CRM connection id (e.g. 'conn_01hx...'), "
            f"got {value!r}."
        )
    return value.strip()


def normalize_statuses(name: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """Accept one status or an iterable of them; every one must be a status the API documents."""
    items: Iterable[Any]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
    else:
        raise PartnerOSConfigError(
            f"{name} must be a status or a list of statuses out of {list(KNOWN_STATUSES)}, got {value!r}."
        )
    out: list[str] = []
    for item in items:
        status = item.strip().lower() if isinstance(item, str) else item
        if status not in KNOWN_STATUSES:
            raise PartnerOSConfigError(
                f"{name} contains {item!r}, which is not a PartnerOS integration status; "
                f"use {', '.join(KNOWN_STATUSES)}."
            )
        if status not in out:
            out.append(status)
    if not out and not allow_empty:
        raise PartnerOSConfigError(f"{name} must name at least one of {list(KNOWN_STATUSES)}.")
    return tuple(out)


def check_status_lists(targets: tuple[str, ...], failures: tuple[str, ...]) -> None:
    """A status cannot mean both "done" and "fail": that would be decided by check order, silently."""
    both = sorted(set(targets) & set(failures))
    if both:
        raise PartnerOSConfigError(
            f"{', '.join(repr(s) for s in both)} is in both target_statuses and failure_statuses; "
            "a status must mean either success or failure. Remove it from one of them."
        )


def validate_arguments(
    connection_id: Any, target_statuses: Any, failure_statuses: Any, synced_after: Any
) -> tuple[str, tuple[str, ...], tuple[str, ...], pendulum.DateTime | None]:
    """Every check at once, in the order a DAG author reads the arguments."""
    cid = require_connection_id(connection_id)
    targets = normalize_statuses("target_statuses", target_statuses)
    failures = normalize_statuses("failure_statuses", failure_statuses, allow_empty=True)
    check_status_lists(targets, failures)
    return cid, targets, failures, parse_synced_after(synced_after)


def parse_synced_after(value: Any) -> pendulum.DateTime | None:
    """A datetime, an ISO 8601 string, or "nothing" (None, "", "None": a manual run has no interval).

    Naive values are taken as UTC, like Airflow's own default time zone.
    """
    import pendulum

    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _EMPTY_MARKERS:
            return None
        try:
            parsed = pendulum.parse(text)
        except Exception:
            parsed = None
        if not isinstance(parsed, dt.datetime):
            raise PartnerOSConfigError(
                f"synced_after must be a datetime or an ISO 8601 timestamp such as "
                f"'2026-01-31T00:00:00Z' (or a template like '{{{{ data_interval_end }}}}'), got {value!r}."
            )
        return _aware(parsed)
    if isinstance(value, dt.datetime):
        return _aware(value)
    if isinstance(value, dt.date):
        return pendulum.datetime(value.year, value.month, value.day, tz="UTC")
    raise PartnerOSConfigError(
        f"synced_after must be a datetime, an ISO 8601 string or None, got {type(value).__name__}."
    )


def _aware(value: dt.datetime) -> pendulum.DateTime:
    import pendulum

    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return pendulum.instance(value)


def parse_api_timestamp(value: Any) -> pendulum.DateTime | None:
    """The API's ``2026-01-31T12:00:00.000Z``; None when absent or unreadable."""
    import pendulum

    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = pendulum.parse(value.strip())
    except Exception:
        return None
    return _aware(parsed) if isinstance(parsed, dt.datetime) else None


def evaluate(
    document: Any,
    targets: Iterable[str],
    failures: Iterable[str],
    synced_after: dt.datetime | None,
) -> Verdict:
    """Decide from one status document; the message says what was seen and, on failure, what to do."""
    if not isinstance(document, Mapping) or not isinstance(document.get("status"), str):
        return Verdict(False, False, f"PartnerOS answered an unexpected status document: {_shape(document)}.")
    cid = document.get("id") or "?"
    platform = document.get("platform")
    name = f"Integration {cid}" + (f" ({platform})" if isinstance(platform, str) and platform else "")
    status = document["status"]
    if status in tuple(failures):
        said = document.get("lastErrorMessage")
        said_text = f" Last error: {said}." if isinstance(said, str) and said.strip() else ""
        when = document.get("lastErrorAt")
        when_text = f" (at {when})" if isinstance(when, str) and when and said_text else ""
        advice = f"{integration_fix(status)}, then clear this task."
        return Verdict(False, True, f"{name} is {status!r}.{said_text.rstrip('.')}{when_text}. {advice}")
    if status not in tuple(targets):
        return Verdict(False, False, f"{name} is {status!r}; waiting for {' or '.join(targets)}.")
    if synced_after is None:
        return Verdict(True, False, f"{name} is {status!r}.")
    raw = document.get("lastSyncAt")
    synced = parse_api_timestamp(raw)
    if synced is None:
        what = "has not synced yet" if raw in (None, "") else f"has an unreadable lastSyncAt {raw!r}"
        return Verdict(
            False,
            False,
            f"{name} is {status!r} but {what}; waiting for a sync at or after {synced_after.isoformat()}.",
        )
    after = _aware(synced_after)
    if synced >= after:
        return Verdict(
            True, False, f"{name} is {status!r} and last synced at {raw} (at or after {after.isoformat()})."
        )
    return Verdict(
        False,
        False,
        f"{name} is {status!r} but last synced at {raw}, before "
        f"{after.isoformat()}; waiting for a newer sync.",
    )


DEFAULT_MAX_TRANSIENT_ERRORS = 5
"""Polls in a row that may fail transiently (5xx, timeouts, 429) before the sensor or trigger gives up."""
MAX_SERVER_POLL_DELAY = 120.0
"""Longest a rate-limited poll defers the next one (a proxy may send ``Retry-After: 86400``)."""


def next_poll_delay(poke_interval: float, error: PartnerOSError | None) -> float:
    """Seconds until the next poll: ``poke_interval``, or longer when the last poll was rate limited
    (a 429 that outlasted the in-call retries) and the server asked for a longer pause."""
    if not isinstance(error, PartnerOSRateLimitedError) or error.retry_after is None:
        return poke_interval
    return max(poke_interval, min(error.retry_after, MAX_SERVER_POLL_DELAY))


def _shape(document: Any) -> str:
    if isinstance(document, Mapping):
        return f"an object with keys {sorted(str(k) for k in document)[:10]} and no string 'status'"
    return f"a {type(document).__name__}"


__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_MAX_TRANSIENT_ERRORS",
    "DEFAULT_TARGET_STATUSES",
    "KNOWN_STATUSES",
    "Verdict",
    "check_status_lists",
    "evaluate",
    "integration_fix",
    "normalize_statuses",
    "parse_api_timestamp",
    "parse_synced_after",
    "require_connection_id",
    "validate_arguments",
]
