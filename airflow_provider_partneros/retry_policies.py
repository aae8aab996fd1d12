"""A ready retry policy for PartnerOS tasks (Airflow 3.3+ ``retry_policy=``).

The exception classes already tell Airflow what to do without any policy: the fatal family derives
from ``AirflowFailException`` (fail at once), everything else from ``AirflowException`` (normal
``retries``). What a policy adds is the *delay*: a task that gave up on a rate limit is retried after
the delay the server asked for (``PartnerOSRateLimitedError.retry_after``) instead of the task's fixed
``retry_delay``. ``ExceptionRetryPolicy``'s rules have static delays only, so the policy here is a
small ``RetryPolicy`` subclass. Any PartnerOS task takes it (Airflow 3.3+)::

    from datetime import timedelta

    from airflow_provider_partneros.operators import AnalyzePartnerOperator
    from airflow_provider_partneros.retry_policies import partneros_retry_policy

    AnalyzePartnerOperator(
        task_id="analyze",
        partner_id="partner-1",
        retries=5,
        retry_delay=timedelta(minutes=2),
        retry_policy=partneros_retry_policy(),
    )

Decisions (the first that matches wins):

* a fatal PartnerOS error (bad credentials or configuration, forbidden, not found, quota, TLS,
  redirect to another host...): **fail** now. Airflow already fails ``AirflowFailException``\\ s without
  asking a policy; the rule is kept so the decision is also explicit when the policy is consulted
  through a wrapper;
* ``PartnerOSRateLimitedError``: **retry** after ``retry_after`` seconds (plus ``rate_limit_margin``),
  at least ``min_rate_limit_delay``, at most ``max_rate_limit_delay``; without a server delay, the task's
  own ``retry_delay``;
* other PartnerOS errors (5xx, timeouts, expired session, cut-off answers): **retry** with the task's
  ``retry_delay``;
* anything else: Airflow's default behaviour.

A policy can only shorten a task's retries, never add more: ``retries`` on the task still counts.

Airflow serializes only a "has a retry policy" flag with the DAG and evaluates the policy from the
parsed DAG file on the worker, so nothing here has to survive serialization; ``serialize()`` /
``deserialize()`` are implemented anyway (JSON round trip) for tools that call them.

Airflow 3.2 has no retry policies: calling :func:`partneros_retry_policy` there raises a clear
``RuntimeError``; import this module freely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_partneros._retry.delay import (
    DEFAULT_MAX_RATE_LIMIT_DELAY,
    DEFAULT_MIN_RATE_LIMIT_DELAY,
    DEFAULT_RATE_LIMIT_MARGIN,
)
from airflow_provider_partneros.version_compat import airflow_version, retry_policies_available

if TYPE_CHECKING:
    from airflow.sdk.definitions.retry_policy import RetryPolicy

__all__ = ["partneros_retry_policy", "retry_policies_available"]


def partneros_retry_policy(
    *,
    rate_limit_margin: float = DEFAULT_RATE_LIMIT_MARGIN,
    min_rate_limit_delay: float = DEFAULT_MIN_RATE_LIMIT_DELAY,
    max_rate_limit_delay: float = DEFAULT_MAX_RATE_LIMIT_DELAY,
) -> RetryPolicy:
    """The PartnerOS retry policy: fail at once on fatal errors, wait out rate limits, retry the rest.

    :param rate_limit_margin: seconds added to the server's ``Retry-After`` / ``X-Retry-After``.
    :param min_rate_limit_delay: shortest wait after a rate limit.
    :param max_rate_limit_delay: longest wait after a rate limit (a server asking for more is capped).
    :raises RuntimeError: on Airflow < 3.3, which has no ``retry_policy``.
    """
    for name, value in (
        ("rate_limit_margin", rate_limit_margin),
        ("min_rate_limit_delay", min_rate_limit_delay),
        ("max_rate_limit_delay", max_rate_limit_delay),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
    if min_rate_limit_delay > max_rate_limit_delay:
        raise ValueError("min_rate_limit_delay must not be greater than max_rate_limit_delay.")
    cls = _policy_class()
    policy: RetryPolicy = cls(
        rate_limit_margin=float(rate_limit_margin),
        min_rate_limit_delay=float(min_rate_limit_delay),
        max_rate_limit_delay=float(max_rate_limit_delay),
    )
    return policy


def _policy_class() -> Callable[..., RetryPolicy]:
    """The ``RetryPolicy`` subclass, imported on first use so this module imports on Airflow 3.2."""
    if not retry_policies_available():
        raise RuntimeError(
            f"partneros_retry_policy() needs Airflow 3.3 or newer (task retry_policy=); this is Airflow "
            f"{airflow_version()}. Without it, PartnerOS errors still fail at once when retrying cannot "
            "help, and use the task's retries otherwise."
        )
    from airflow_provider_partneros._retry.policy import PartnerOSRetryPolicy

    return PartnerOSRetryPolicy
