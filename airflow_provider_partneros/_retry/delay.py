"""The retry policy's delay rule and its defaults, apart from Airflow so both policy modules can use it.

:mod:`~airflow_provider_partneros.retry_policies` (public, imports on any Airflow) and :mod:`.policy`
(the ``RetryPolicy`` subclass, Airflow 3.3+ only) both import from here, so the subclass needs nothing
of the public module, which imports the subclass lazily (on first use) and only then.
"""

from __future__ import annotations

from datetime import timedelta

from airflow_provider_partneros.exceptions import PartnerOSRateLimitedError

DEFAULT_RATE_LIMIT_MARGIN = 1.0
DEFAULT_MIN_RATE_LIMIT_DELAY = 1.0
DEFAULT_MAX_RATE_LIMIT_DELAY = 3600.0


def rate_limit_delay(
    exc: PartnerOSRateLimitedError,
    *,
    rate_limit_margin: float = DEFAULT_RATE_LIMIT_MARGIN,
    min_rate_limit_delay: float = DEFAULT_MIN_RATE_LIMIT_DELAY,
    max_rate_limit_delay: float = DEFAULT_MAX_RATE_LIMIT_DELAY,
) -> timedelta | None:
    """The retry delay for a rate-limited task, or None to use the task's ``retry_delay``."""
    if exc.retry_after is None:
        return None
    seconds = min(max(exc.retry_after + rate_limit_margin, min_rate_limit_delay), max_rate_limit_delay)
    return timedelta(seconds=seconds)
