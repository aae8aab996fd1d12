"""Batch enrichment: ``PartnerOSHook.batch_analyze_partners`` and ``BatchAnalyzePartnersOperator``.

200 partners against the stand-in with its sign-in limiter ON (3 per 10 s), scripted faults per
partner, outcomes read per partner from the XCom and from the stand-in's request log. The operator
runs in real Airflow (``dag.test``) with ``retries=1, retry_delay=0``.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from typing import Any

import pytest
from airflow.sdk import DAG, task

from airflow_provider_partneros import _batch
from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSInvalidCredentialsError,
    PartnerOSNotFoundError,
    PartnerOSUnavailableError,
)
from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.operators import BatchAnalyzePartnersOperator
from airflow_provider_partneros.testing import DEMO_ORG_ID, OTHER_ORG_PARTNER_ID, Fault, PartnerOSStandIn

RunDag = Callable[..., Any]
N = 200
IDS = [f"batch-{i:03d}" for i in range(N)]
MISSING = "batch-missing"
ANALYZE = "/api/partners/{id}/analyze"
HAS_TASK_STATE_STORE = tuple(int(x) for x in version("apache-airflow").split(".")[:2]) >= (3, 3)
"""Airflow 3.3+ keeps the successes of a failed try for the retry; 3.2 redoes every partner."""


@pytest.fixture(autouse=True)
def partners(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> PartnerOSStandIn:
    """200 partners in the demo organization; ``partneros_default`` with tiny in-call backoff."""
    assert standin.sign_in_rate_limit is not None  # the limiter stays on: one sign-in per try must do
    for pid in IDS:
        standin.add_partner(pid, organization=DEMO_ORG_ID, name=pid.title(), domain=f"{pid}.example")
    extra = {"timeout": 10, "retry_backoff": 0.01}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    return standin


def analyze_requests(standin: PartnerOSStandIn) -> Counter[str]:
    """Analyze requests per partner id, as the server saw them."""
    return Counter(r.path.split("/")[3] for r in standin.request_log if r.route == ANALYZE)


def stored_keys(dag_id: str) -> list[str]:
    """The task_state_store keys of a DAG's tasks (Airflow 3.3+; none on 3.2)."""
    if not HAS_TASK_STATE_STORE:
        return []
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(TaskStateStoreModel.key).where(TaskStateStoreModel.dag_id == dag_id)
        return sorted(session.scalars(query))


def make_dag(request: pytest.FixtureRequest, **kwargs: Any) -> DAG:
    return DAG(
        dag_id="test_batch_" + re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:180],
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(0)},
        **kwargs,
    )


# --- the pool, without HTTP ----------------------------------------------------------------------------


def test_run_batch_keeps_every_outcome_when_some_items_fail() -> None:
    def call(item: str) -> str:
        if item.endswith("3"):
            raise PartnerOSUnavailableError(f"{item} is down")
        return item.upper()

    batch = _batch.run_batch([f"i{n}" for n in range(20)], call, max_concurrency=4)

    assert batch.results == {f"i{n}": f"I{n}" for n in range(20) if n % 10 != 3}
    assert {item: err.error_class for item, err in batch.errors.items()} == {
        "i3": "PartnerOSUnavailableError",
        "i13": "PartnerOSUnavailableError",
    }
    assert list(batch.as_dict()) == [f"i{n}" for n in range(20)]  # the order given
    assert batch.as_dict()["i3"] == {
        "error": {"class": "PartnerOSUnavailableError", "message": "i3 is down", "retryable": True}
    }


def test_run_batch_never_runs_more_than_max_concurrency_at_once() -> None:
    lock = threading.Lock()
    running, peak = 0, 0
    release = threading.Event()

    def call(item: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 5:
                release.set()
        release.wait(30)  # hold every worker until five are in flight together
        with lock:
            running -= 1
        return item

    batch = _batch.run_batch([str(n) for n in range(40)], call, max_concurrency=5, warm_up=False)

    assert len(batch.results) == 40
    assert peak == 5


def test_run_batch_stops_at_an_error_every_item_would_meet() -> None:
    calls: list[str] = []

    def call(item: str) -> str:
        calls.append(item)
        raise PartnerOSInvalidCredentialsError("Sign-in refused: check the password.")

    batch = _batch.run_batch(
        [str(n) for n in range(50)], call, max_concurrency=8, abort_on=(PartnerOSInvalidCredentialsError,)
    )

    assert calls == ["0"]  # the warm-up call alone: no sign-in storm
    assert len(batch.errors) == 50
    assert batch.errors["0"].message == "Sign-in refused: check the password."
    assert batch.errors["49"].message.startswith("not attempted: the batch stopped after")
    assert not batch.errors["49"].retryable


# --- the hook -------------------------------------------------------------------------------------------


def test_hook_enriches_200_partners_with_one_sign_in(standin: PartnerOSStandIn) -> None:
    with PartnerOSHook() as hook:
        batch = hook.batch_analyze_partners(IDS, max_concurrency=16)

    assert batch.ok
    assert [batch.results[pid]["partner"]["id"] for pid in IDS] == IDS
    assert set(analyze_requests(standin).values()) == {1}
    assert standin.sign_ins == standin.sign_in_attempts == 1
    assert standin.sign_outs == 1


def test_hook_batch_outcomes_per_partner_with_scripted_faults(standin: PartnerOSStandIn) -> None:
    standin.inject(Fault.html_bad_gateway("/api/partners/batch-010/analyze", times=2))  # recovers in-call
    standin.inject(Fault.html_bad_gateway("/api/partners/batch-020/analyze", times=3))  # outlasts 2 retries
    standin.inject(Fault.rate_limited(1, "/api/partners/batch-050/analyze"))

    with PartnerOSHook() as hook:
        batch = hook.batch_analyze_partners([*IDS, MISSING, OTHER_ORG_PARTNER_ID], max_concurrency=16)

    assert {pid: type(err.exception) for pid, err in batch.errors.items()} == {
        "batch-020": PartnerOSUnavailableError,
        MISSING: PartnerOSNotFoundError,
        OTHER_ORG_PARTNER_ID: PartnerOSNotFoundError,
    }
    assert len(batch.results) == N - 1
    counts = analyze_requests(standin)
    assert (counts["batch-010"], counts["batch-020"], counts["batch-050"]) == (3, 3, 2)
    assert standin.sign_ins == 1


def test_a_session_refused_mid_batch_is_renewed_once_for_every_worker(standin: PartnerOSStandIn) -> None:
    standin.inject(Fault.unauthorized("/api/partners/batch-100/analyze"))

    with PartnerOSHook() as hook:
        batch = hook.batch_analyze_partners(IDS, max_concurrency=16)

    assert batch.ok
    assert standin.sign_ins == standin.sign_in_attempts == 2
    assert analyze_requests(standin)["batch-100"] == 2


def test_a_429_pauses_every_worker_for_the_servers_delay(standin: PartnerOSStandIn) -> None:
    delay = 3
    standin.analyze_delay = 0.02
    standin.inject(Fault.rate_limited(delay, "/api/partners/batch-050/analyze"))

    with PartnerOSHook() as hook:
        batch = hook.batch_analyze_partners(IDS, max_concurrency=16)

    assert batch.ok
    analyze = [r for r in standin.request_log if r.route == ANALYZE]
    limited_at = next(r.time for r in analyze if r.status == 429)
    during = [r for r in analyze if limited_at < r.time < limited_at + delay]
    # Only requests the other 15 workers started before the 429 reached the client (one each at most);
    # without the shared gate they would keep sending (~16 every 20 ms) throughout the delay.
    assert len(during) <= 15
    assert max(r.time for r in analyze) >= limited_at + delay


# --- the operator in real Airflow ---------------------------------------------------------------------


def test_operator_retry_redoes_only_the_failed_partners(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.html_bad_gateway("/api/partners/batch-010/analyze", times=2))
    standin.inject(Fault.html_bad_gateway("/api/partners/batch-020/analyze", times=3))
    standin.inject(Fault.rate_limited(1, "/api/partners/batch-050/analyze"))
    with make_dag(request) as dag:
        BatchAnalyzePartnersOperator(task_id="enrich", partner_ids=IDS, max_concurrency=16)

    result = run_dag(dag)

    assert result.state == "success"
    assert result["enrich"].try_number == 2
    xcom = result["enrich"].xcom
    assert list(xcom) == IDS
    assert all(xcom[pid]["partner"]["id"] == pid for pid in IDS)
    counts = analyze_requests(standin)
    retried = {"batch-010": 3, "batch-020": 3 + 1, "batch-050": 2}
    if HAS_TASK_STATE_STORE:
        assert counts == Counter({pid: retried.get(pid, 1) for pid in IDS})
    else:  # Airflow 3.2: no task_state_store, the retry redoes every partner
        assert counts == Counter({pid: retried.get(pid, 1) + (pid != "batch-020") for pid in IDS})
    assert standin.sign_ins == standin.sign_outs == 2  # one session per try
    assert stored_keys(dag.dag_id) == []  # the kept results are deleted once the task succeeds


def test_operator_fails_after_the_others_finished_and_keeps_their_results(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.html_bad_gateway("/api/partners/batch-020/analyze", times=3))  # retryable
    with make_dag(request) as dag:
        BatchAnalyzePartnersOperator(task_id="enrich", partner_ids=[*IDS, MISSING], max_concurrency=16)

    result = run_dag(dag)

    assert result.state == "failed"
    assert result["enrich"].state == "failed"
    assert result["enrich"].try_number == 2  # retried once: batch-020's 502s were retryable
    xcom = result["enrich"].xcom  # the last try's outcome, pushed although the task failed
    assert xcom[MISSING] == {
        "error": {
            "class": "PartnerOSNotFoundError",
            "message": f"PartnerOS POST /api/partners/{MISSING}/analyze answered 404: Partner not found "
            "(not_found). The id does not exist, or belongs to another organization than the session's "
            "active one.",
            "retryable": False,
        }
    }
    assert all(xcom[pid]["partner"]["id"] == pid for pid in IDS)
    counts = analyze_requests(standin)
    if HAS_TASK_STATE_STORE:  # the failed task keeps its successes for a later retry or clear
        assert stored_keys(dag.dag_id)[0] == "partneros_analyze_partners"
    assert counts[MISSING] == 2  # a fatal failure is tried again with the retryable ones
    assert counts["batch-020"] == 4
    assert sum(counts.values()) == (N + 1 + 3 + 1 if HAS_TASK_STATE_STORE else 2 * (N + 1) + 2)


def test_operator_fails_without_retry_when_every_failure_is_fatal(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        BatchAnalyzePartnersOperator(
            task_id="enrich", partner_ids=[*IDS[:20], MISSING, OTHER_ORG_PARTNER_ID], max_concurrency=4
        )

    result = run_dag(dag)

    assert result["enrich"].state == "failed"
    assert result["enrich"].try_number == 1
    xcom = result["enrich"].xcom
    assert {pid for pid, value in xcom.items() if "error" in value} == {MISSING, OTHER_ORG_PARTNER_ID}
    assert len(xcom) == 22


def test_operator_takes_the_ids_from_an_upstream_xcom_list(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:

        @task
        def choose() -> list[str]:
            return [*IDS[:5], IDS[0]]  # a duplicate is enriched once

        BatchAnalyzePartnersOperator(task_id="enrich", partner_ids=choose())

    result = run_dag(dag)

    assert result.state == "success"
    assert list(result["enrich"].xcom) == IDS[:5]
    assert analyze_requests(standin) == Counter(dict.fromkeys(IDS[:5], 1))


def test_operator_refuses_a_string_of_ids_at_parse() -> None:
    with pytest.raises(PartnerOSConfigError, match="must be a list of ids"):
        BatchAnalyzePartnersOperator(task_id="enrich", partner_ids="batch-001,batch-002")


@pytest.mark.parametrize("bad", [0, 65, 2.5, True])
def test_operator_refuses_a_max_concurrency_out_of_range(bad: Any) -> None:
    with pytest.raises(PartnerOSConfigError, match="max_concurrency"):
        BatchAnalyzePartnersOperator(task_id="enrich", partner_ids=["batch-001"], max_concurrency=bad)
