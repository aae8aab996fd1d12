"""``on_kill``: a killed batch or ICP stream stops at once, keeps what is done, and lets go of the session.

In process, with real HTTP against the stand-in and a real SIGTERM: the handler is installed the way
Airflow 3.3's task runner installs its own (``signal.signal(SIGTERM, lambda *_: task.on_kill())``), so
``on_kill`` runs in the thread that runs ``execute``, interrupting whatever it waits on. The
``task_state_store`` is a dict with that store's three methods (the seam: in process there is no
execution API to serve it; the deployment tests exercise the real one).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partneros.exceptions import PartnerOSCancelledError
from airflow_provider_partneros.operators import BatchAnalyzePartnersOperator, GenerateIcpOperator
from airflow_provider_partneros.testing import DEMO_ORG_ID, PartnerOSStandIn

N = 200
IDS = [f"kill-{i:03d}" for i in range(N)]
ANALYZE = "/api/partners/{id}/analyze"
TIMEOUT = 3.0
"""The connection's per-request timeout: a killed task must be gone within it plus a little."""
LINGER = 1.0


class DictStateStore:
    """The three ``task_state_store`` methods the batch operator uses, over a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.fixture
def conn(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    for pid in IDS:
        standin.add_partner(pid, organization=DEMO_ORG_ID, name=pid.title(), domain=f"{pid}.example")
    extra = {"timeout": TIMEOUT, "retry_backoff": 0.01}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(extra=extra))
    monkeypatch.setenv("AIRFLOW__PARTNEROS__SESSION_LINGER", str(LINGER))
    return "partneros_default"


@pytest.fixture
def sigterm_runs_on_kill() -> Iterator[Callable[[Any], None]]:
    """Install a SIGTERM handler calling ``task.on_kill()``, as the task runner does; restored after."""
    previous = signal.getsignal(signal.SIGTERM)

    def install(task: Any) -> None:
        signal.signal(signal.SIGTERM, lambda *_: task.on_kill())

    yield install
    signal.signal(signal.SIGTERM, previous)


def kill_when(condition: Callable[[], bool], killed_at: list[float]) -> threading.Thread:
    """SIGTERM this process once ``condition()`` holds (polled every 10 ms); the time goes to killed_at."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        killed_at.append(time.time())
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def analyzed(standin: PartnerOSStandIn) -> list[Any]:
    return [r for r in standin.request_log if r.route == ANALYZE]


def test_killed_batch_starts_no_request_after_the_kill_and_ends_within_the_timeout(
    standin: PartnerOSStandIn, conn: str, sigterm_runs_on_kill: Callable[[Any], None]
) -> None:
    standin.analyze_delay = 0.2
    store = DictStateStore()
    op = BatchAnalyzePartnersOperator(task_id="batch", partner_ids=IDS, max_concurrency=8, do_xcom_push=False)
    sigterm_runs_on_kill(op)
    killed_at: list[float] = []
    kill_when(lambda: len(analyzed(standin)) >= 40, killed_at)

    with pytest.raises(PartnerOSCancelledError, match="The task was killed") as failure:
        op.execute({"task_state_store": store})  # type: ignore[arg-type]
    ended = time.time()

    (kill,) = killed_at
    assert ended - kill < TIMEOUT + 2
    late = [r for r in analyzed(standin) if r.time > kill + 0.1]
    assert late == []  # every call that reached the server had started before the kill
    done = {r.path.split("/")[3] for r in analyzed(standin) if r.status == 200}
    assert 40 <= len(done) < N
    kept = {pid for key, chunk in store.values.items() if key.endswith(tuple("0123456789")) for pid in chunk}
    assert kept == done  # every partner enriched before (or while) the kill is kept for the retry
    assert f"{len(done)} of {N} partners are enriched" in str(failure.value)


def test_retry_after_a_kill_enriches_only_the_partners_not_done(
    standin: PartnerOSStandIn, conn: str, sigterm_runs_on_kill: Callable[[Any], None]
) -> None:
    standin.analyze_delay = 0.1
    store = DictStateStore()
    first = BatchAnalyzePartnersOperator(
        task_id="batch", partner_ids=IDS, max_concurrency=8, do_xcom_push=False
    )
    sigterm_runs_on_kill(first)
    kill_when(lambda: len(analyzed(standin)) >= 30, [])
    with pytest.raises(PartnerOSCancelledError):
        first.execute({"task_state_store": store})  # type: ignore[arg-type]
    done_first = {r.path.split("/")[3] for r in analyzed(standin) if r.status == 200}
    seen_before = len(standin.request_log)

    retry = BatchAnalyzePartnersOperator(
        task_id="batch", partner_ids=IDS, max_concurrency=8, do_xcom_push=False
    )
    outcome = retry.execute({"task_state_store": store})  # type: ignore[arg-type]

    retried = [r.path.split("/")[3] for r in standin.request_log[seen_before:] if r.route == ANALYZE]
    assert sorted(retried) == sorted(set(IDS) - done_first)  # each unfinished partner once, no other
    assert set(outcome) == set(IDS)
    assert all("partner" in v for v in outcome.values())
    assert store.values == {}  # emptied on success


def test_killed_batch_releases_the_session_which_is_signed_out_after_its_linger(
    standin: PartnerOSStandIn, conn: str, sigterm_runs_on_kill: Callable[[Any], None]
) -> None:
    standin.analyze_delay = 0.2
    op = BatchAnalyzePartnersOperator(task_id="batch", partner_ids=IDS, max_concurrency=8, do_xcom_push=False)
    sigterm_runs_on_kill(op)
    kill_when(lambda: len(analyzed(standin)) >= 20, [])
    with pytest.raises(PartnerOSCancelledError):
        op.execute({"task_state_store": DictStateStore()})  # type: ignore[arg-type]
    assert standin.sign_ins == 1

    deadline = time.monotonic() + LINGER + 15
    while standin.active_sessions and time.monotonic() < deadline:
        time.sleep(0.1)

    assert standin.active_sessions == 0
    assert standin.sign_outs == 1


def test_killed_icp_stream_ends_at_once_and_leaves_no_file(
    standin: PartnerOSStandIn, conn: str, sigterm_runs_on_kill: Callable[[Any], None], tmp_path: Path
) -> None:
    standin.set_icp_size(2 * 1024 * 1024)
    standin.icp_chunk_size = 16 * 1024
    standin.icp_chunk_delay = 0.1  # ~13 s of streaming if nothing stops it
    target = tmp_path / "icp.json"
    op = GenerateIcpOperator(task_id="icp", company="Globex", output_path=str(target))
    sigterm_runs_on_kill(op)
    partial = tmp_path / ".icp.json.partial"
    killed_at: list[float] = []
    kill_when(lambda: partial.exists() and partial.stat().st_size > 0, killed_at)

    with pytest.raises(PartnerOSCancelledError, match="streamed the ICP"):
        op.execute({})  # type: ignore[arg-type]

    assert time.time() - killed_at[0] < 2
    assert not target.exists()
    assert not partial.exists()
    assert [r.route for r in standin.request_log if r.time > killed_at[0] + 0.1] in (
        [],
        ["/api/auth/sign-out"],
    )
