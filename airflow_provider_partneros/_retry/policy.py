"""The ``RetryPolicy`` subclass behind ``retry_policies.partneros_retry_policy()``.

Kept in its own module because it imports ``airflow.sdk.definitions.retry_policy`` at import time,
which exists only on Airflow 3.3+; the public module imports this one lazily.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from airflow_provider_partneros._retry.delay import (
    DEFAULT_MAX_RATE_LIMIT_DELAY,
    DEFAULT_MIN_RATE_LIMIT_DELAY,
    DEFAULT_RATE_LIMIT_MARGIN,
    rate_limit_delay,
)
from airflow_provider_partneros.exceptions import (
    PartnerOSError,
    PartnerOSFatalError,
    PartnerOSRateLimitedError,
)

POLICY_TYPE = "PartnerOSRetryPolicy"


class PartnerOSRetryPolicy(RetryPolicy):
    """See :mod:`airflow_provider_partneros.retry_policies`; build it with ``partneros_retry_policy()``."""

    def __init__(
        self,
        *,
        rate_limit_margin: float = DEFAULT_RATE_LIMIT_MARGIN,
        min_rate_limit_delay: float = DEFAULT_MIN_RATE_LIMIT_DELAY,
        max_rate_limit_delay: float = DEFAULT_MAX_RATE_LIMIT_DELAY,
    ) -> None:
        self.rate_limit_margin = rate_limit_margin
        self.min_rate_limit_delay = min_rate_limit_delay
        self.max_rate_limit_delay = max_rate_limit_delay

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Any = None,
    ) -> RetryDecision:
        if isinstance(exception, PartnerOSFatalError):
            return RetryDecision.fail(
                f"{type(exception).__name__}: retrying cannot help; fix the cause and clear the task."
            )
        if isinstance(exception, PartnerOSRateLimitedError):
            delay = rate_limit_delay(
                exception,
                rate_limit_margin=self.rate_limit_margin,
                min_rate_limit_delay=self.min_rate_limit_delay,
                max_rate_limit_delay=self.max_rate_limit_delay,
            )
            when = f"in {delay.total_seconds():.0f} s as PartnerOS asked" if delay else "after retry_delay"
            return RetryDecision.retry(delay, f"PartnerOS rate limit: retrying {when}.")
        if isinstance(exception, PartnerOSError):
            return RetryDecision.retry(None, f"{type(exception).__name__}: transient, retrying.")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {
            "__type": POLICY_TYPE,
            "rate_limit_margin": self.rate_limit_margin,
            "min_rate_limit_delay": self.min_rate_limit_delay,
            "max_rate_limit_delay": self.max_rate_limit_delay,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PartnerOSRetryPolicy:
        if data.get("__type") != POLICY_TYPE:
            raise ValueError(f"not a serialized {POLICY_TYPE}: {data.get('__type')!r}")
        return cls(
            rate_limit_margin=float(data["rate_limit_margin"]),
            min_rate_limit_delay=float(data["min_rate_limit_delay"]),
            max_rate_limit_delay=float(data["max_rate_limit_delay"]),
        )

    def __repr__(self) -> str:
        return (
            f"PartnerOSRetryPolicy(rate_limit_margin={self.rate_limit_margin}, "
            f"min_rate_limit_delay={self.min_rate_limit_delay}, "
            f"max_rate_limit_delay={self.max_rate_limit_delay})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartnerOSRetryPolicy) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.serialize().items())))
