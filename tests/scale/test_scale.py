"""The provider at scale-out: CeleryExecutor on PostgreSQL and Redis, two workers, two triggerers.

The environment (harness.py) gives every worker and triggerer a host of its own: its own session
store (``[partneros] session_dir``) and its own egress address, so the stand-in counts sign-ins and
applies its sign-in limit (3 per 10 s per client IP) per host, as PartnerOS does per egress IP. The
scenarios run in file order on one environment; the secrets audit comes last and reads what all of
them left behind.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
from harness import (
    CONN_SHARED,
    SCALE_PARTNER_COUNT,
    SHORT_SESSION_MAX_AGE,
    WATCHED_INTEGRATION,
    ScaleEnvironment,
)

from airflow_provider_partneros.testing import (
    DEMO_HUBSPOT_CONNECTION,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    iso,
)

pytestmark = pytest.mark.scale

ANALYZE = "/api/partners/{id}/analyze"
STATUS = "/api/integrations/{id}/status"
SENSED = DEMO_SALESFORCE_CONNECTION  # scale_sensors waits for it
FAILOVER = DEMO_HUBSPOT_CONNECTION  # scale_failover waits for it
WORKERS = ("w1", "w2")
TRIGGERERS = ("t1", "t2")


def server_now(env: ScaleEnvironment) -> datetime:
    """The stand-in's clock, as the timestamps it reports."""
    return datetime.fromtimestamp(env.server.clock(), tz=timezone.utc)


def _wait_until(what: str, check: object, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(1)
    raise TimeoutError(f"not within {timeout} s: {what}")


def _run_fanout(env: ScaleEnvironment, conn_id: str = CONN_SHARED) -> tuple[str, str, float]:
    since = env.server.clock()
    run_id = env.trigger("scale_fanout", {"conn_id": conn_id})
    env.sample_redis_while_queued(b"scale_fanout")  # Celery's messages, for the secrets audit
    return run_id, env.wait_for_run("scale_fanout", run_id, timeout=600), since


def test_fanout_of_100_analyses_runs_on_both_workers_with_one_sign_in_per_host(
    scale_env: ScaleEnvironment,
) -> None:
    env = scale_env
    env.ensure_running()
    run_id, state, since = _run_fanout(env)

    analyses = env.requests_by_host(ANALYZE, since=since, status=200)
    sign_ins = env.sign_ins_by_host(since=since)
    rate_limited = env.rate_limited_by_host(since=since)
    print(
        f"fan-out: analyses per host {dict(analyses)}, sign-ins {dict(sign_ins)}, 429s {dict(rate_limited)}"
    )
    assert env.states("scale_fanout", run_id, "analyze") == Counter(success=SCALE_PARTNER_COUNT)
    assert state == "success"
    assert set(analyses) == set(WORKERS), "both workers (hosts) ran analyses"
    assert sum(analyses.values()) == SCALE_PARTNER_COUNT
    # The shared-session goal: one sign-in per host per session_max_age (900 s; the run is shorter).
    # (A triggerer may sign in meanwhile too, for the event-driven DAG's watcher: a host of its own.)
    assert all(sign_ins[host] <= 1 for host in WORKERS), dict(sign_ins)
    assert sum(rate_limited.values()) == 0
    # No session left behind beyond the one a host's store may keep for its next task.
    live = env.live_sessions_by_host()
    assert all(live[host] <= 1 for host in WORKERS), dict(live)


def test_fifty_deferred_sensors_spread_over_two_triggerers_sign_in_once_per_triggerer(
    scale_env: ScaleEnvironment,
) -> None:
    env = scale_env
    env.ensure_running()
    since = env.server.clock()
    run_id = env.trigger("scale_sensors", {"synced_after": iso(server_now(env))})
    env.wait_for_states("scale_sensors", run_id, "wait", "deferred", 50)
    deferred_at = env.server.clock()
    env.sample_trigger_kwargs()  # for the secrets audit
    _wait_until(
        "both triggerers poll the integration",
        lambda: (
            set(env.requests_by_host(STATUS, since=deferred_at, status=200, resource=SENSED))
            == set(TRIGGERERS)
        ),
        timeout=60,
    )

    env.server.set_integration(SENSED, last_sync_at=server_now(env))
    state = env.wait_for_run("scale_sensors", run_id, timeout=300)

    sign_ins = env.sign_ins_by_host(since=since)
    polls = env.requests_by_host(STATUS, since=since, resource=SENSED)
    print(f"sensors: sign-ins {dict(sign_ins)}, polls {dict(polls)}")
    assert env.states("scale_sensors", run_id, "wait") == Counter(success=50)
    assert state == "success"
    # Deferrable sensors make no call from a worker; each triggerer shares one session among its triggers.
    assert set(sign_ins) <= set(TRIGGERERS), dict(sign_ins)
    assert all(sign_ins[t] <= 1 for t in TRIGGERERS), dict(sign_ins)
    assert sum(env.rate_limited_by_host(since=since).values()) == 0


def test_sensors_survive_a_triggerer_killed_mid_wait(scale_env: ScaleEnvironment) -> None:
    env = scale_env
    env.ensure_running()
    since = env.server.clock()
    run_id = env.trigger("scale_failover", {"synced_after": iso(server_now(env))})
    env.wait_for_states("scale_failover", run_id, "wait", "deferred", 20)
    deferred_at = env.server.clock()
    _wait_until(
        "a triggerer polls the integration",
        lambda: env.requests_by_host(STATUS, since=deferred_at, status=200, resource=FAILOVER),
        timeout=60,
    )
    time.sleep(3)
    polls = env.requests_by_host(STATUS, since=env.server.clock() - 3, status=200, resource=FAILOVER)
    victim = max(TRIGGERERS, key=lambda t: polls[t])
    survivor = next(t for t in TRIGGERERS if t != victim)

    env.kill(victim)  # SIGKILL, mid-wait: its triggers are moved once its heartbeat is stale
    killed_at = env.server.clock()
    env.server.set_integration(FAILOVER, last_sync_at=server_now(env))
    state = env.wait_for_run("scale_failover", run_id, timeout=300)

    sign_ins = env.sign_ins_by_host(since=since)
    print(f"failover: killed {victim} (polls before: {dict(polls)}), sign-ins {dict(sign_ins)}")
    assert polls[victim] > 0, "the killed triggerer was running triggers"
    assert env.states("scale_failover", run_id, "wait") == Counter(success=20)
    assert state == "success"
    assert env.requests_by_host(STATUS, since=killed_at, status=200)[victim] == 0  # nothing at all
    # Bounded per triggerer, not per trigger: one session per host. The survivor keeps its session
    # across the handover (an unused session lingers 60 s, longer than the 10 s heartbeat threshold).
    assert set(sign_ins) <= set(TRIGGERERS)
    assert sign_ins[victim] <= 1
    assert sign_ins[survivor] <= 1
    assert sum(env.rate_limited_by_host(since=since).values()) == 0


def _runs(env: ScaleEnvironment, dag_id: str) -> list[dict[str, object]]:
    return list(
        env.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "id"})["dag_runs"]
    )


def test_watcher_makes_one_run_per_sync_with_two_triggerers(scale_env: ScaleEnvironment) -> None:
    env = scale_env
    env.ensure_running()  # both triggerers (one was killed above); the watcher may have moved
    since = env.server.clock()
    _wait_until(
        "the watcher polls its integration",
        lambda: env.requests_by_host(STATUS, since=since, status=200, resource=WATCHED_INTEGRATION),
        timeout=120,
    )
    before = len(_runs(env, "scale_on_sync"))
    syncs = []
    for n in range(1, 4):
        time.sleep(3)  # the watcher's baseline poll (2 s interval) has seen the previous state
        syncs.append(iso(server_now(env)))
        env.server.set_integration(WATCHED_INTEGRATION, last_sync_at=syncs[-1])
        _wait_until(f"run {n} of scale_on_sync", lambda n=n: len(_runs(env, "scale_on_sync")) >= before + n)
    _wait_until(
        "every run finished",
        lambda: all(r["state"] in ("success", "failed") for r in _runs(env, "scale_on_sync")),
    )
    time.sleep(6)  # three more polls with nothing new: no further run

    runs = _runs(env, "scale_on_sync")[before:]
    watchers = env.requests_by_host(STATUS, since=since, status=200, resource=WATCHED_INTEGRATION)
    print(f"watcher: {len(runs)} runs for {len(syncs)} syncs, polls by {dict(watchers)}")
    assert [r["state"] for r in runs] == ["success"] * 3
    assert len(runs) == len(syncs)
    assert set(watchers) <= set(TRIGGERERS)
    assert sum(env.rate_limited_by_host(since=since).values()) == 0


def test_task_of_a_killed_worker_is_retried_on_the_other_worker(scale_env: ScaleEnvironment) -> None:
    env = scale_env
    env.ensure_running(kinds=("worker",))
    run_id = env.trigger("scale_worker_kill")
    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    first_try = env.marker_dir / f"{safe_run}.try1"
    _wait_until("the first try is running on a worker", first_try.exists, timeout=180)
    first_host = first_try.read_text()

    env.kill(first_host)  # SIGKILL the whole host: worker, pool and the task process
    orphans = env.live_session_ids(first_host)
    killed_at = time.monotonic()
    state = env.wait_for_run("scale_worker_kill", run_id, timeout=300)

    second_try = env.marker_dir / f"{safe_run}.try2"
    (ti,) = env.task_instances("scale_worker_kill", run_id)
    assert state == "success"
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    assert second_try.read_text() not in ("", first_host), "the retry ran on the other worker"
    assert len(orphans) == 1, "the killed task could not sign out: its session outlived it"

    # The bound: the host comes back, and its next task, once the orphan is older than session_max_age,
    # finds it unused (the kernel dropped the dead task's lock), replaces it and signs it out.
    env.ensure_running(kinds=("worker",))
    time.sleep(max(0.0, SHORT_SESSION_MAX_AGE + 1 - (time.monotonic() - killed_at)))
    after = env.trigger("scale_each_worker")
    assert env.wait_for_run("scale_each_worker", after, timeout=300) == "success"
    assert env.live_session_ids(first_host) & orphans == set()


def test_with_the_redis_store_fanout_and_sensors_over_every_host_sign_in_once_in_total(
    scale_env: ScaleEnvironment,
) -> None:
    env = scale_env
    env.use_redis_session_store()  # every worker and triggerer, each still its own host and egress IP
    since = env.server.clock()
    sensors = env.trigger("scale_sensors", {"synced_after": iso(server_now(env))})
    run_id, state, _ = _run_fanout(env)
    env.wait_for_states("scale_sensors", sensors, "wait", "deferred", 50)
    deferred_at = env.server.clock()
    env.sample_trigger_kwargs()  # for the secrets audit
    _wait_until(
        "both triggerers poll the integration",
        lambda: (
            set(env.requests_by_host(STATUS, since=deferred_at, status=200, resource=SENSED))
            == set(TRIGGERERS)
        ),
        timeout=60,
    )
    env.redis_samples.extend(env.redis_dump())  # the session store's keys while in use, for the audit
    env.server.set_integration(SENSED, last_sync_at=server_now(env))
    sensors_state = env.wait_for_run("scale_sensors", sensors, timeout=300)

    analyses = env.requests_by_host(ANALYZE, since=since, status=200)
    sign_ins = env.sign_ins_by_host(since=since)
    print(f"redis store: analyses per host {dict(analyses)}, sign-ins {dict(sign_ins)}")
    assert env.states("scale_fanout", run_id, "analyze") == Counter(success=SCALE_PARTNER_COUNT)
    assert (state, sensors_state) == ("success", "success")
    assert set(analyses) == set(WORKERS), "both workers (hosts) ran analyses"
    assert env.states("scale_sensors", sensors, "wait") == Counter(success=50)
    assert sum(sign_ins.values()) == 1, dict(sign_ins)  # one for the deployment, not one per host
    assert sum(env.rate_limited_by_host(since=since).values()) == 0


def _secret_needles(env: ScaleEnvironment) -> dict[str, str]:
    """Every secret the run produced, in the forms it could take in a dump: the password, each session
    cookie as set (URL-encoded), URL-decoded, and its bare token."""
    needles = {"password": DEMO_PASSWORD}
    for i, cookie in enumerate(env.server.issued_session_cookies):
        decoded = unquote(cookie)
        needles[f"cookie {i}"] = cookie
        needles[f"cookie {i} (decoded)"] = decoded
        needles[f"cookie {i} (token)"] = decoded.rpartition(".")[0]
    return needles


def test_no_password_or_session_cookie_in_database_redis_or_logs(scale_env: ScaleEnvironment) -> None:
    env = scale_env
    if not (env.redis_samples and env.trigger_kwargs_samples):
        pytest.fail("the audit reads what the scenarios above left behind: run the whole module")
    needles = _secret_needles(env)
    sources: dict[str, bytes] = {"pg_dump": env.pg_dump().encode()}
    sources["redis"] = b"\n".join(env.redis_dump())
    sources["redis while tasks were queued"] = b"\n".join(env.redis_samples)
    sources["trigger kwargs (decrypted)"] = b"\n".join(env.trigger_kwargs_samples)
    for path in env.log_files():
        sources[str(path.relative_to(env.root))] = Path(path).read_bytes()

    leaks = [
        f"{what} in {where}"
        for where, data in sources.items()
        for what, needle in needles.items()
        if needle.encode() in data
    ]
    assert len(needles) > 1, "the deployment signed in: there are cookies to look for"
    # ... and looked where the secrets would be: serialized trigger kwargs, XComs, Celery messages, logs.
    assert b"conn_salesforce_demo" in sources["pg_dump"]
    assert b"conn_salesforce_demo" in sources["trigger kwargs (decrypted)"]
    assert b"aiInsights" in sources["pg_dump"]
    assert b"scale_fanout" in sources["redis while tasks were queued"]
    # a log with a sign-in in it (a fan-out task's; when the Redis-store scenario runs alone, the one
    # process of the deployment that signed in may be a triggerer, which logs to its own log)
    assert any(b"Signed in to" in data for where, data in sources.items() if where.endswith(".log"))
    assert leaks == []
