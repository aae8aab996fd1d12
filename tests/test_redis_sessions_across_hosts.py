"""One sign-in for a whole deployment: many hosts behind one IP sharing one session through Redis.

Each host is a real process tree with its own ``session_dir`` (``tests/hosts.py``), every task reaches
the stand-in (limiter on) from 127.0.0.1, and every host's ``[partneros] session_store_conn_id`` names
the same real ``redis-server``. Then Redis misbehaves mid-run: no task may fail, and the sign-ins each
fault costs are counted (printed; ``-s`` shows them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hosts import LAUNCHER, HostsRun, run_hosts
from redis_helpers import RedisServer

from airflow_provider_partneros._sessions.redis_store import LEASE_TTL
from airflow_provider_partneros.testing import Fault, PartnerOSStandIn

pytestmark = [pytest.mark.hosts, pytest.mark.redis]

REDIS_CONN_ID = "partneros_redis"
CALLS = ["analyze:partner-1"]


def redis_env(server: RedisServer, password: str | None = None) -> dict[str, str]:
    return {
        f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": server.airflow_connection_json(password=password),
        "AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID": REDIS_CONN_ID,
    }


def connection(standin: PartnerOSStandIn) -> str:
    return standin.connection_json(extra={"timeout": 10})


def report(what: str, run: HostsRun, standin: PartnerOSStandIn) -> None:
    print(
        f"\n{what}: {len(run.results)} tasks, {len(run.failed)} failed, {standin.sign_ins} sign-ins, "
        f"{standin.sign_in_rate_limited} x 429, {run.wall:.1f} s"
    )


def run_with_fault(
    tmp: Path, fault_at: float, fault: Callable[[], Any], **kwargs: Any
) -> tuple[HostsRun, Any]:
    """``run_hosts`` with ``fault()`` called ``fault_at`` seconds after the gate opens."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["run"] = run_hosts(tmp, **kwargs)
        except BaseException as err:  # re-raised below, in the test's thread
            done["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    while not (tmp / "gate").exists() and thread.is_alive():
        time.sleep(0.02)
    time.sleep(fault_at)
    faulted = fault()
    thread.join()
    if "error" in done:
        raise done["error"]
    return done["run"], faulted


@pytest.mark.parametrize(
    ("hosts", "per_host"),
    [pytest.param(12, 2, id="12-hosts-behind-a-NAT"), pytest.param(24, 1, id="24-kubernetes-pods")],
)
def test_a_deployment_on_the_redis_store_signs_in_once(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path, hosts: int, per_host: int
) -> None:
    run = run_hosts(
        tmp_path,
        connection(standin),
        hosts=hosts,
        per_host=per_host,
        calls=CALLS,
        env=redis_env(redis_server),
        linger=5.0,
    )
    report(f"{hosts} hosts x {per_host}, Redis store", run, standin)

    assert run.failed == []
    assert standin.sign_ins == 1
    assert standin.sign_in_rate_limited == 0


def test_a_hundred_single_task_pods_on_the_redis_store_sign_in_once(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    run = run_hosts(
        tmp_path,
        connection(standin),
        hosts=1,
        per_host=100,
        calls=CALLS,
        env=redis_env(redis_server),
        linger=5.0,
        options={"store_per_child": str(tmp_path / "pods")},  # each task a pod with its own store
    )
    report("100 pods, Redis store", run, standin)

    assert run.failed == []
    assert standin.sign_ins == 1
    assert standin.sign_in_rate_limited == 0


def test_the_last_task_out_of_the_deployment_signs_the_session_out_after_the_linger(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    run_hosts(
        tmp_path,
        connection(standin),
        hosts=4,
        per_host=1,
        calls=CALLS,
        env=redis_env(redis_server),
        linger=2.0,
    )
    deadline = time.monotonic() + 2.0 + LEASE_TTL + 10
    while standin.active_sessions and time.monotonic() < deadline:
        time.sleep(0.2)
    assert standin.active_sessions == 0
    assert standin.sign_ins == 1


# --- Redis trouble mid-run: no task fails -------------------------------------------------------------

FAULT_RUN: dict[str, Any] = {
    "hosts": 6,
    "per_host": 2,
    "calls": ["analyze:partner-1", "status"],
    "linger": 10.0,  # longer than the spread: a host's second task finds its first one's session
    "options": {"start_spread": 8.0, "hold": 0.5},
}


def test_redis_killed_mid_run_then_restarted_fails_no_task(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    def kill_then_restart() -> None:
        redis_server.kill()
        time.sleep(3)
        redis_server.start()

    run, _ = run_with_fault(
        tmp_path,
        2.0,
        kill_then_restart,
        connection_json=connection(standin),
        env=redis_env(redis_server),
        **FAULT_RUN,
    )
    report("Redis SIGKILLed mid-run, restarted 3 s later", run, standin)

    assert run.failed == []
    assert standin.sign_ins <= FAULT_RUN["hosts"] + 2  # at worst each host's own store, and Redis twice


def test_a_wrong_redis_password_fails_no_task(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    run = run_hosts(
        tmp_path, connection(standin), env=redis_env(redis_server, password="not-the-password"), **FAULT_RUN
    )
    report("wrong Redis password", run, standin)

    assert run.failed == []
    assert standin.sign_ins <= FAULT_RUN["hosts"]  # each host's own store serves


def test_a_slow_redis_fails_no_task(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    run, sleeper = run_with_fault(
        tmp_path,
        2.0,
        lambda: redis_server.sleep(5),
        connection_json=connection(standin),
        env=redis_env(redis_server),
        **FAULT_RUN,
    )
    sleeper.wait(timeout=30)
    report("Redis not answering for 5 s mid-run", run, standin)

    assert run.failed == []
    assert standin.sign_ins <= FAULT_RUN["hosts"] + 1


def test_flushall_mid_run_fails_no_task(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    run, _ = run_with_fault(
        tmp_path,
        2.0,
        redis_server.flushall,
        connection_json=connection(standin),
        env=redis_env(redis_server),
        **FAULT_RUN,
    )
    report("FLUSHALL mid-run", run, standin)

    assert run.failed == []
    assert standin.sign_ins <= 2  # the record is gone: one more sign-in, never one per host


def test_a_lock_holder_killed_during_sign_in_holds_the_others_back_at_most_the_lock_expiry(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    standin.inject(Fault(route="/api/auth/sign-in/email", kind="delay", seconds=60))  # the first only
    config = tmp_path / "holder.json"
    out = tmp_path / "holder-out"
    config.write_text(json.dumps({"n": 1, "calls": CALLS, "out": str(out)}))
    env = {**os.environ, "AIRFLOW_CONN_PARTNEROS_DEFAULT": connection(standin), **redis_env(redis_server)}
    env["AIRFLOW__PARTNEROS__SESSION_DIR"] = str(tmp_path / "holder-store")
    launcher = subprocess.Popen([sys.executable, str(LAUNCHER), str(config)], env=env)
    client = redis_server.client()
    deadline = time.monotonic() + 60
    while not list(client.scan_iter("partneros:*:lock")):  # it holds the lock: it is signing in
        assert time.monotonic() < deadline, "the first task never took the lock"
        time.sleep(0.02)
    (pid,) = json.loads((out / "pids.json").read_text())
    os.kill(pid, signal.SIGKILL)
    launcher.wait(timeout=30)

    run = run_hosts(
        tmp_path / "others",
        connection(standin),
        hosts=6,
        per_host=1,
        calls=CALLS,
        env=redis_env(redis_server),
        linger=3.0,
    )
    report("lock holder SIGKILLed during sign-in, then 6 hosts", run, standin)

    assert run.failed == []
    assert not (out / "0.json").exists()  # the killed task never finished
    assert standin.sign_in_rate_limited == 0
    assert run.wall < LEASE_TTL + 15  # held back by the dead holder's lock at most until it expired


def test_a_tampered_record_is_ignored_and_costs_one_sign_in(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = redis_env(redis_server)
    run_hosts(tmp_path / "one", connection(standin), hosts=3, per_host=1, calls=CALLS, env=env, linger=30.0)
    assert standin.sign_ins == 1
    client = redis_server.client()
    (state_key,) = [k for k in client.scan_iter("partneros:*:state")]
    blob = bytearray(client.get(state_key))  # type: ignore[arg-type]
    blob[-5] ^= 0x40
    client.set(state_key, bytes(blob))

    run = run_hosts(
        tmp_path / "two", connection(standin), hosts=3, per_host=1, calls=CALLS, env=env, linger=0.0
    )
    report("a tampered record, then 3 hosts", run, standin)

    assert run.failed == []
    assert standin.sign_ins == 2  # the record failed authentication: one sign-in, never trust


# --- rotation and revocation, deployment-wide ----------------------------------------------------------


def test_waves_of_tasks_across_hosts_sign_in_once_per_max_age_and_sign_out_what_they_replace(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    max_age, waves = 6.0, 3
    conn = standin.connection_json(extra={"timeout": 10, "session_max_age": max_age})
    for wave in range(waves):
        run = run_hosts(
            tmp_path / f"wave-{wave}",
            conn,
            hosts=4,
            per_host=1,
            calls=CALLS,
            env=redis_env(redis_server),
            linger=60.0,
        )
        assert run.failed == []
        if wave < waves - 1:
            # Its session was signed in before this wave ended: past max_age by the next wave, however
            # long the next launcher takes to start (on a busy machine, several seconds).
            time.sleep(max_age + 0.5)
    print(f"\n{waves} waves of 4 hosts, session_max_age {max_age:g} s: {standin.sign_ins} sign-ins")

    assert waves <= standin.sign_ins <= waves + 1  # about one per age, for the whole deployment
    # Every replaced session signed out; the current one lingers (or, past max_age, was signed out too).
    assert standin.active_sessions <= 1


def test_revoking_every_session_costs_the_deployment_one_sign_in(
    standin: PartnerOSStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = redis_env(redis_server)
    run_hosts(
        tmp_path / "before", connection(standin), hosts=3, per_host=1, calls=CALLS, env=env, linger=60.0
    )
    assert standin.sign_ins == 1
    standin.expire_sessions()  # the server revokes every session

    run = run_hosts(
        tmp_path / "after", connection(standin), hosts=6, per_host=1, calls=CALLS, env=env, linger=60.0
    )
    print(f"\nrevoked, then 6 hosts: {standin.sign_ins - 1} re-sign-ins")

    assert run.failed == []
    assert standin.sign_ins == 2  # one re-sign-in for the deployment, not one per host
