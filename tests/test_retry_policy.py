"""``partneros_retry_policy()``: fail at once on fatal errors, wait out rate limits for the server's delay."""

from __future__ import annotations

import json
import pickle
import time
from datetime import timedelta
from typing import Any

import pendulum
import pytest

from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSForbiddenError,
    PartnerOSInvalidCredentialsError,
    PartnerOSNotFoundError,
    PartnerOSRateLimitedError,
    PartnerOSSessionExpiredError,
    PartnerOSTLSError,
    PartnerOSUnavailableError,
)
from airflow_provider_partneros.retry_policies import partneros_retry_policy, retry_policies_available
from airflow_provider_partneros.testing import DEMO_SALESFORCE_CONNECTION, Fault, PartnerOSStandIn

needs_33 = pytest.mark.skipif(
    not retry_policies_available(), reason="task retry_policy= needs Airflow >= 3.3 (this is older)"
)


@pytest.mark.skipif(retry_policies_available(), reason="only on Airflow < 3.3")
def test_older_airflow_gets_a_clear_error() -> None:  # pragma: no cover - runs on the 3.2 matrix leg
    with pytest.raises(RuntimeError, match=r"needs Airflow 3\.3 or newer"):
        partneros_retry_policy()


def _rate_limited(retry_after: float | None) -> PartnerOSRateLimitedError:
    return PartnerOSRateLimitedError(
        "PartnerOS GET /x answered 429.", retry_after=retry_after, method="GET", endpoint="/x", status=429
    )


@needs_33
@pytest.mark.parametrize(
    "exc",
    [
        PartnerOSConfigError("bad"),
        PartnerOSInvalidCredentialsError("bad", status=401),
        PartnerOSForbiddenError("no", status=403),
        PartnerOSNotFoundError("no", status=404),
        PartnerOSTLSError("no"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_fatal_errors_fail_at_once(exc: Exception) -> None:
    from airflow.sdk import RetryAction

    decision = partneros_retry_policy().evaluate(exc, try_number=1, max_tries=5)
    assert decision.action is RetryAction.FAIL
    assert type(exc).__name__ in (decision.reason or "")


@needs_33
@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(120.0, 121.0), (0.0, 1.0), (1e9, 3600.0), (None, None)],
    ids=["server-delay", "at-least-min", "capped", "no-delay-uses-retry-delay"],
)
def test_rate_limit_is_retried_after_the_servers_delay(
    retry_after: float | None, expected: float | None
) -> None:
    from airflow.sdk import RetryAction

    decision = partneros_retry_policy().evaluate(_rate_limited(retry_after), try_number=1, max_tries=3)
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay == (timedelta(seconds=expected) if expected is not None else None)


@needs_33
@pytest.mark.parametrize(
    "exc",
    [PartnerOSUnavailableError("502"), PartnerOSSessionExpiredError("401", status=401)],
    ids=lambda e: type(e).__name__,
)
def test_transient_errors_retry_with_the_tasks_delay(exc: Exception) -> None:
    from airflow.sdk import RetryAction

    decision = partneros_retry_policy().evaluate(exc, try_number=1, max_tries=3)
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay is None


@needs_33
def test_other_exceptions_keep_airflows_default() -> None:
    from airflow.sdk import RetryAction

    assert partneros_retry_policy().evaluate(ValueError("x"), 1, 3).action is RetryAction.DEFAULT


@needs_33
def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="rate_limit_margin"):
        partneros_retry_policy(rate_limit_margin=-1)
    with pytest.raises(ValueError, match="min_rate_limit_delay"):
        partneros_retry_policy(min_rate_limit_delay=10, max_rate_limit_delay=5)


@needs_33
def test_policy_serializes_to_json_and_back_and_pickles() -> None:
    policy = partneros_retry_policy(rate_limit_margin=2, max_rate_limit_delay=60)
    data = json.loads(json.dumps(policy.serialize()))
    again = type(policy).deserialize(data)
    assert again == policy
    assert again.serialize() == policy.serialize()
    assert pickle.loads(pickle.dumps(policy)) == policy  # noqa: S301 - our own object
    with pytest.raises(ValueError, match="not a serialized"):
        type(policy).deserialize({"__type": "ExceptionRetryPolicy"})


# --- in real Airflow ----------------------------------------------------------------------------------


def _dag(dag_id: str, fn: Any, **task_kwargs: Any) -> Any:
    from airflow.sdk import DAG, task

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        task(task_id="work", **task_kwargs)(fn)()
    return dag


def _status_task() -> str:
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

    with PartnerOSHook() as hook:
        return str(hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)["status"])


def _use(monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTNEROS_DEFAULT",
        standin.connection_json(extra={"timeout": 2, "retry_backoff": 0.01, "max_retries": 1}),
    )


@needs_33
def test_rate_limited_task_is_retried_after_the_servers_delay_not_retry_delay(
    run_dag: Any, standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, standin)
    # 31 s is longer than the hook waits inside a call, so the task fails with the server's delay...
    standin.inject(Fault.rate_limited(31, "/api/integrations/*/status"))
    # ...and the policy schedules the retry after it (capped at 2 s here to keep the test short),
    # not after the task's one-hour retry_delay.
    policy = partneros_retry_policy(rate_limit_margin=0, min_rate_limit_delay=0, max_rate_limit_delay=2)
    dag = _dag(
        "retry_policy_rate_limit",
        _status_task,
        retries=1,
        retry_delay=timedelta(hours=1),
        retry_policy=policy,
    )
    started = time.monotonic()
    result = run_dag(dag)
    assert result["work"].state == "success"
    assert result["work"].try_number == 2
    assert result["work"].xcom == "active"
    assert time.monotonic() - started >= 2.0
    assert standin.sign_ins == standin.sign_outs == 2


@needs_33
def test_fatal_task_fails_at_once_with_the_policy(
    run_dag: Any, standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, standin)
    standin.inject(Fault.empty(404, "/api/integrations/*/status", times=None))
    dag = _dag(
        "retry_policy_fatal",
        _status_task,
        retries=3,
        retry_delay=timedelta(0),
        retry_policy=partneros_retry_policy(),
    )
    result = run_dag(dag)
    assert result["work"].state == "failed"
    assert result["work"].try_number == 1
