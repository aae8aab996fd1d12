"""Benchmark 8: N hosts behind one egress IP (a Celery fleet behind a NAT, KubernetesExecutor pods).

Each host is a process tree with its own session store (``tests/hosts.py``), all reaching the stand-in
from 127.0.0.1 with its sign-in limit ON (3 per 10 s per IP, as PartnerOS). With the host's file
store every host signs in once, so N hosts need about ceil(N/3) x 10 s to all be signed in: the
limiter's floor, measured here against the wall time of the same run.

With the deployment's Redis store (a real ``redis-server``, ``tests/redis_helpers.py``) the same hosts
sign in once in all. Its wall time is compared with the same tasks run again at once while that
session lingers, so that no sign-in is needed: the cost of the one sign-in and of waiting for it.
The per-task cost of the Redis store over the file store is measured apart, in one process without
the crowd (``per_task_cost``): tasks one after another, each opening the stores, reusing the shared
session and releasing it, with a new Redis client per task as a new task process has.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c

sys.path.insert(0, str(c.REPO / "tests"))


REDIS_CONN_ID = "partneros_redis"


def _redis_env(redis: Any) -> dict[str, str]:
    return {
        f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis.airflow_connection_json(),
        "AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID": REDIS_CONN_ID,
    }


def run_file_store(hosts: int, per_host: int) -> dict[str, Any]:
    return run_store(hosts, per_host, redis=False)


def run_store(hosts: int, per_host: int, *, redis: bool) -> dict[str, Any]:
    """One run of ``hosts`` x ``per_host`` tasks; with ``redis``, then the same again while the session
    lingers (``warm_wall``: the same tasks needing no sign-in)."""
    from hosts import run_hosts
    from redis_helpers import RedisServer

    from airflow_provider_partneros.testing import PartnerOSStandIn

    with tempfile.TemporaryDirectory(prefix="bench-hosts-") as tmp, PartnerOSStandIn() as server:
        server.seed_demo()
        redis_server = RedisServer(Path(tmp) / "redis") if redis else None
        try:
            if redis_server is not None:
                redis_server.start()
            env = _redis_env(redis_server) if redis_server is not None else None

            def once(name: str, linger: float) -> Any:
                return run_hosts(
                    Path(tmp) / name,
                    server.connection_json(extra={"timeout": 10}),
                    hosts=hosts,
                    per_host=per_host,
                    calls=["analyze:partner-1"],
                    env=env,
                    linger=linger,
                )

            # with Redis the session must outlive the warm run's start-up (each host imports Airflow)
            run = once("cold", 600.0 if redis else 0.0)
            result = {
                "tasks": hosts * per_host,
                "failed": len(run.failed),
                "sign_ins": server.sign_ins,
                "rate_limited": server.sign_in_rate_limited,
                "wall": run.wall,
            }
            if redis:
                warm = once("warm", 0.0)
                result.update(warm_wall=warm.wall, warm_sign_ins=server.sign_ins - result["sign_ins"])
                result["failed"] += len(warm.failed)
            return result
        finally:
            if redis_server is not None:
                redis_server.stop()


def per_task_cost(tasks: int) -> dict[str, float]:
    """Median seconds per task (open the stores, reuse the shared session for one call, release it),
    file store vs Redis store, measured in a child process of its own (its own environment)."""
    import json
    import os
    import subprocess

    from redis_helpers import RedisServer

    from airflow_provider_partneros.testing import PartnerOSStandIn

    with tempfile.TemporaryDirectory(prefix="bench-task-cost-") as tmp, PartnerOSStandIn() as server:
        server.seed_demo()
        redis_server = RedisServer(Path(tmp) / "redis")
        redis_server.start()
        try:
            store = Path(tmp) / "store"
            store.mkdir(mode=0o700)
            env = {
                **os.environ,
                "AIRFLOW_CONN_PARTNEROS_DEFAULT": server.connection_json(extra={"timeout": 10}),
                "AIRFLOW__PARTNEROS__SESSION_DIR": str(store),
                "AIRFLOW__PARTNEROS__SESSION_LINGER": "600",
                **_redis_env(redis_server),
            }
            done = subprocess.run(
                [sys.executable, __file__, "--per-task-cost", str(tasks)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            return dict(json.loads(done.stdout.strip().splitlines()[-1]))
        finally:
            redis_server.stop()


def trigger_lag_with_redis(quick: bool) -> tuple[dict[str, Any], int]:
    """Benchmark 2's steady state (N deferred triggers in one triggerer) with the deployment's Redis
    store configured: the event loop must not wait on Redis. Returns the result and how many keys the
    store holds after it (proof that it was used)."""
    from redis_helpers import RedisServer

    args = {"kind": "provider", "n": 20 if quick else 1000, "poke_interval": 0.5 if quick else 5.0}
    args.update(window=1.0 if quick else 10.0, memory=False)
    with c.StandIn(rate_limit=True) as server, tempfile.TemporaryDirectory(prefix="bench-lag-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis")
        redis_server.start()
        try:
            env: dict[str, str | None] = {
                **_redis_env(redis_server),
                "AIRFLOW__PARTNEROS__SESSION_LINGER": "30",
            }
            result = c.run_worker(
                "bench_triggers", "scale", {"control_port": server.control_port, **args}, env=env
            )
            return result, len(redis_server.dump())
        finally:
            redis_server.stop()


def _per_task_cost_child(tasks: int) -> None:
    """In the child: alternate blocks of file-store and Redis-store tasks (so drift hits both alike)."""
    import json
    import os
    import statistics
    import time

    from airflow_provider_partneros._sessions import redis_store
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

    store_conn = os.environ.pop("AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID")
    times: dict[str, list[float]] = {"file": [], "redis": []}

    def one_task(kind: str) -> None:
        if kind == "redis":
            os.environ["AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID"] = store_conn
            redis_store._client.cache_clear()  # a new task process connects anew
            redis_store._scripts.cache_clear()
        else:
            os.environ.pop("AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID", None)
        started = time.perf_counter()
        with PartnerOSHook() as hook:
            hook.get_integration_status("conn_salesforce_demo")
        times[kind].append(time.perf_counter() - started)

    for kind in ("file", "redis"):  # warm-up: each store signs in once and keeps its session
        for _ in range(5):
            one_task(kind)
    times = {"file": [], "redis": []}
    extra = []  # per pair of neighbouring blocks: Redis block's median minus the file block's
    for _ in range(max(1, tasks // 20)):
        for kind in ("file", "redis"):
            for _ in range(10):
                one_task(kind)
        extra.append(statistics.median(times["redis"][-10:]) - statistics.median(times["file"][-10:]))
    result = {kind: statistics.median(ts) for kind, ts in times.items()}
    print(json.dumps({**result, "extra": statistics.median(extra)}))


def _describe(r: dict[str, Any]) -> str:
    return f"{r['failed']} failed, {r['sign_ins']} sign-ins, {r['rate_limited']} x 429, {r['wall']:.1f}s"


def rows(quick: bool) -> list[c.Row]:
    shapes = [(6, 1)] if quick else [(12, 2), (24, 1)]
    out = []
    for hosts, per_host in shapes:
        r = run_file_store(hosts, per_host)
        floor = math.ceil(hosts / 3) * 10.0
        value = _describe(r)
        out.append(
            c.Row(
                "8",
                f"{hosts} hosts x {per_host} task(s) behind one IP, host file stores (limit ON)",
                value,
                f"limiter floor ceil({hosts}/3) x 10 s = {floor:.0f} s",
                c.fmt_ratio(r["wall"] / floor),
                "0 failed, wall <= 1.5x floor",
                r["failed"] == 0 and r["wall"] <= 1.5 * floor,
                [],
            )
        )
        red = run_store(hosts, per_host, redis=True)
        out.append(
            c.Row(
                "8",
                f"{hosts} hosts x {per_host} task(s) behind one IP, the deployment's Redis store (limit ON)",
                _describe(red),
                f"the same, no sign-in needed: {red['warm_wall']:.1f}s; host file stores: {r['wall']:.1f}s",
                c.fmt_ratio(red["wall"] / red["warm_wall"]),
                "0 failed, 1 sign-in, 0 x 429, wall <= 1.2x no-sign-in",
                red["failed"] == 0
                and red["sign_ins"] == 1
                and red["rate_limited"] == 0
                and red["wall"] <= 1.2 * red["warm_wall"],
                [
                    f"8: {hosts} hosts on Redis, {c.fmt_ratio(r['wall'] / red['wall'])} faster than on host "
                    f"file stores; the no-sign-in run signed in {red['warm_sign_ins']} times."
                ],
            )
        )
    lag, keys = trigger_lag_with_redis(quick)
    out.append(
        c.Row(
            "8",
            f"{lag['n']} triggers with the Redis store: event-loop lag, max in steady state "
            f"(p99 {c.fmt_ms(lag['lag_p99'])})",
            c.fmt_ms(lag["lag_max"]),
            "benchmark 2's goal",
            "-",
            "< 100 ms",
            lag["lag_max"] < 0.100,
            [
                f"8: with the Redis store, {lag['n']} triggers: {lag['sign_ins']} sign-ins in the window, "
                f"{lag['errors']} error events; the store held {keys} keys afterwards."
            ],
        )
    )
    cost = per_task_cost(40 if quick else 200)
    extra = cost["extra"]  # the median of paired blocks' differences: drift on a shared machine cancels
    out.append(
        c.Row(
            "8",
            "per-task cost of the Redis store over the file store (open, reuse the session, release)",
            f"{c.fmt_ms(extra)} a task (Redis {c.fmt_ms(cost['redis'])})",
            f"file store {c.fmt_ms(cost['file'])}",
            c.fmt_ratio(cost["redis"] / cost["file"]),
            "< 5 ms a task",
            extra < 0.005,
            [],
        )
    )
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--per-task-cost"]:
        _per_task_cost_child(int(sys.argv[2]))
