"""Benchmark 6: batch enrichment (issue 15).

Two measurements, both against the stand-in in its own process with ``analyze_delay`` set (the real
analyze endpoint is an AI call that takes seconds):

* ``threads`` vs ``async``: the same 200 enrichments, 16 in flight, through the sync hook on threads
  (``PartnerOSHook.analyze_partners``) and through the async transport the trigger uses
  (``AsyncPartnerOSSession`` on one event loop, an ``asyncio.Semaphore`` of 16), both with the same
  protocol flows and the same 429 gate. Each in a fresh worker process; wall and process CPU of the
  batch only (connection lookup and imports excluded for both).
* ``deployment``: a real scheduler (``airflow standalone``, LocalExecutor, parallelism 4 for 2 cores)
  runs 200 partners as 200 mapped ``AnalyzePartnerOperator`` tasks, then as one
  ``AnalyzePartnersOperator`` task. Wall time is the DAG run's own start to end (from the REST API).
  CPU is every process of the deployment (api-server, scheduler, dag-processor, triggerer, executor
  workers, task supervisors and task processes), read from ``/proc`` for the whole process tree of
  ``airflow standalone`` before and after the run: utime + stime of the live processes plus cutime +
  cstime (their reaped children; task processes are reaped by their supervisor). The idle burn of the
  deployment (heartbeats, DAG parsing) is measured for 20 s first and reported, not subtracted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import _common as c

IDS_PREFIX = "bench-partner-"
ANALYZE_ROUTE = "POST /api/partners/{id}/analyze"


def _prepare(control_port: int, n: int, delay: float) -> list[str]:
    ids = [f"{IDS_PREFIX}{i:04d}" for i in range(n)]
    c.control_call(control_port, "add_partners", ids=ids)
    c.control_call(control_port, "analyze_delay", seconds=delay)
    return ids


def _threads(control_port: int, n: int, delay: float, concurrency: int) -> dict[str, Any]:
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

    ids = _prepare(control_port, n, delay)
    c.setup_connection(control_port)
    hook = PartnerOSHook()
    hook.settings  # noqa: B018 - the connection lookup is not part of the figure
    probe = c.ServerProbe(control_port)
    with c.timed() as t, hook:
        batch = hook.analyze_partners(ids, max_concurrency=concurrency)
    return {
        "mode": "threads",
        "wall": t["wall"],
        "cpu": t["cpu"],
        "ok": len(batch.results),
        "server": probe.delta(),
    }


def _async(control_port: int, n: int, delay: float, concurrency: int) -> dict[str, Any]:
    import asyncio

    from airflow_provider_partneros import _batch
    from airflow_provider_partneros import _protocol as protocol
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook
    from airflow_provider_partneros.triggers._session import AsyncPartnerOSSession

    ids = _prepare(control_port, n, delay)
    c.setup_connection(control_port)
    settings = PartnerOSHook().settings

    async def run() -> int:
        session = AsyncPartnerOSSession(settings)
        gate = _batch.RateGate()
        slots = asyncio.Semaphore(concurrency)

        async def one(pid: str) -> dict[str, Any]:
            async with slots:
                request = protocol.analyze_partner_request(settings, pid)
                reply = await session.run(_batch.gated(protocol.call_flow(settings, request), gate))
                return protocol.require_object(request, protocol.parse_json(request, reply), "partner")

        try:
            await one(ids[0])  # warm-up, as run_batch does
            outcomes = await asyncio.gather(*(one(pid) for pid in ids[1:]), return_exceptions=True)
        finally:
            await session.aclose()
        return 1 + sum(not isinstance(o, BaseException) for o in outcomes)

    probe = c.ServerProbe(control_port)
    with c.timed() as t:
        ok = asyncio.run(run())
    return {"mode": "async", "wall": t["wall"], "cpu": t["cpu"], "ok": ok, "server": probe.delta()}


# --- the real deployment -------------------------------------------------------------------------------

_MAPPED_DAG = """
from datetime import datetime, timezone
from airflow.sdk import DAG
from airflow_provider_partneros.operators import AnalyzePartnerOperator

with DAG("bench_enrich_mapped", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
    AnalyzePartnerOperator.partial(task_id="analyze").expand(partner_id={ids})
"""
_BATCH_DAG = """
from datetime import datetime, timezone
from airflow.sdk import DAG
from airflow_provider_partneros.operators import AnalyzePartnersOperator

with DAG("bench_enrich_batch", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
    AnalyzePartnersOperator(task_id="analyze", partner_ids={ids}, max_concurrency={concurrency})
"""


def _tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and all its live descendants, including their reaped children."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is the state (stat field 3): ppid is field 4, utime..cstime are fields 14-17.
        ppid = int(fields[1])
        cpu = sum(int(x) for x in fields[11:15]) / ticks
        stats[int(entry.name)] = (ppid, cpu)
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(stats[pid][1] for pid in tree if pid in stats)


def _deployment(
    control_port: int, n: int, delay: float, concurrency: int, parallelism: int
) -> dict[str, Any]:
    sys.path.insert(0, str(c.REPO / "tests"))
    from deployment_harness import AirflowDeployment

    ids = _prepare(control_port, n, delay)
    conn = dict(c.control_call(control_port, "connection"))
    conn["extra"] = {"timeout": 60}
    dags = {
        "bench_enrich_mapped.py": _MAPPED_DAG.format(ids=ids),
        "bench_enrich_batch.py": _BATCH_DAG.format(ids=ids, concurrency=concurrency),
    }
    env = {
        "AIRFLOW_CONN_PARTNEROS_DEFAULT": json.dumps(conn),
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(max(parallelism, 16)),
    }
    out: dict[str, Any] = {"parallelism": parallelism}
    with AirflowDeployment(dags=dags, env=env) as airflow:
        out["healthy_after"] = airflow.wait_healthy()
        for dag_id in ("bench_enrich_mapped", "bench_enrich_batch"):
            airflow.wait_for_dag(dag_id, timeout=180)
        assert airflow.process is not None
        root = airflow.process.pid
        time.sleep(10)  # let start-up settle
        cpu0 = _tree_cpu(root)
        time.sleep(20)
        out["idle_cpu_per_s"] = (_tree_cpu(root) - cpu0) / 20
        # The mapped baseline runs with the sign-in limit OFF: without a session shared between task
        # processes, 200 sign-ins at 3 per 10 s would take over 11 minutes on their own.
        for label, dag_id, rate_limit in (
            ("batch", "bench_enrich_batch", True),
            ("mapped", "bench_enrich_mapped", False),
        ):
            c.control_call(control_port, "rate_limit", on=rate_limit)
            probe = c.ServerProbe(control_port)
            cpu0 = _tree_cpu(root)
            t0 = time.monotonic()
            run_id = airflow.trigger(dag_id)
            state = airflow.wait_for_run(dag_id, run_id, timeout=1800)
            polled = time.monotonic() - t0
            cpu = _tree_cpu(root) - cpu0
            run = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            wall = _seconds(run["end_date"]) - _seconds(run["start_date"])
            out[label] = {
                "state": state,
                "wall": wall,
                "polled_wall": polled,
                "cpu": cpu,
                "rate_limit": rate_limit,
                "server": probe.delta(),
            }
    return out


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


MODES = {"threads": _threads, "async": _async, "deployment": _deployment}


def jobs(quick: bool) -> list[c.Job]:
    args = {"n": 40 if quick else 200, "delay": 0.2 if quick else 1.0, "concurrency": 16}
    rounds = 1 if quick else 2
    return [c.Job("bench_batch", mode, dict(args)) for _ in range(rounds) for mode in ("threads", "async")]


def deployment_args(quick: bool) -> dict[str, Any]:
    return {"n": 20 if quick else 200, "delay": 0.2 if quick else 1.0, "concurrency": 16, "parallelism": 4}


def rows(results: list[dict[str, Any]]) -> list[c.Row]:
    threads = [r for r in results if r.get("mode") == "threads"]
    asyncs = [r for r in results if r.get("mode") == "async"]
    n = threads[0]["server"]["requests"].get(ANALYZE_ROUTE, 0)
    tw, aw = c.median([r["wall"] for r in threads]), c.median([r["wall"] for r in asyncs])
    tc, ac = c.median([r["cpu"] for r in threads]), c.median([r["cpu"] for r in asyncs])
    note = (
        f"6: {n} enrichments, 16 in flight, analyze_delay as in the job args; median of "
        f"{len(threads)} fresh worker processes each (ABAB order). Every call ok: threads "
        f"{[r['ok'] for r in threads]}, async {[r['ok'] for r in asyncs]}; sign-ins threads "
        f"{[r['server']['sign_ins'] for r in threads]}, async {[r['server']['sign_ins'] for r in asyncs]}."
    )
    return [
        c.Row(
            "6",
            f"batch transport: wall, {n} enrichments, threads over PartnerOSHook vs asyncio over "
            "AsyncPartnerOSSession",
            f"{tw:.2f} s",
            f"{aw:.2f} s",
            c.fmt_ratio(tw / aw),
            notes=[note],
        ),
        c.Row(
            "6",
            f"batch transport: client CPU, {n} enrichments, threads vs asyncio",
            f"{tc:.2f} s",
            f"{ac:.2f} s",
            c.fmt_ratio(tc / ac),
        ),
    ]


def deployment_rows(result: dict[str, Any]) -> list[c.Row]:
    b, m = result["batch"], result["mapped"]
    n = m["server"]["requests"].get(ANALYZE_ROUTE, 0)
    wall_ratio = m["wall"] / b["wall"]
    cpu_ratio = m["cpu"] / b["cpu"]
    note = (
        f"6: airflow standalone, LocalExecutor, parallelism {result['parallelism']}; idle deployment "
        f"burns {result['idle_cpu_per_s']:.2f} CPU-s per s (included in both CPU figures, not "
        f"subtracted). Runs: batch {b['state']} ({b['server']['requests'].get(ANALYZE_ROUTE, 0)} "
        f"analyze calls, sign-in limit on), mapped {m['state']} ({n} analyze calls, sign-in limit OFF "
        "for the mapped baseline: without a session shared between processes its 200 sign-ins alone "
        "would take > 11 min at 3 per 10 s). Wall = the DAG run's start to end."
    )
    return [
        c.Row(
            "6",
            f"{n} partners on a real scheduler: wall, one AnalyzePartnersOperator vs {n} mapped tasks",
            f"{b['wall']:.1f} s",
            f"{m['wall']:.1f} s",
            c.fmt_ratio(wall_ratio),
            ">= 5x faster",
            wall_ratio >= 5 and b["state"] == "success",
            [note],
        ),
        c.Row(
            "6",
            f"{n} partners on a real scheduler: CPU of the whole deployment during the run",
            f"{b['cpu']:.1f} s",
            f"{m['cpu']:.1f} s",
            c.fmt_ratio(cpu_ratio),
            ">= 20x cheaper",
            cpu_ratio >= 20,
        ),
        c.Row(
            "6",
            f"{n} partners on a real scheduler: sign-ins (batch vs mapped)",
            str(b["server"]["sign_ins"]),
            str(m["server"]["sign_ins"]),
            "-",
            "batch: 1",
            b["server"]["sign_ins"] == 1,
        ),
    ]


if __name__ == "__main__":
    c.worker_main(MODES)
