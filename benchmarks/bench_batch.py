"""Benchmark 7: batch enrichment (issue 15).

Two measurements, both against the stand-in in its own process with ``analyze_delay`` set (the real
analyze endpoint is an AI call that takes seconds):

* ``threads`` vs ``async``: the same 200 enrichments, 16 in flight, through the sync hook on threads
  (``PartnerOSHook.batch_analyze_partners``) and through the async transport the trigger uses
  (``AsyncSession`` on one event loop, an ``asyncio.Semaphore`` of 16), both with the same
  protocol flows and the same 429 gate. Each in a fresh worker process; wall and process CPU of the
  batch only (connection lookup and imports excluded for both).
* ``deployment``: a real scheduler (``airflow standalone``, LocalExecutor, parallelism 4 for 2 cores)
  runs 200 partners as 200 mapped ``AnalyzePartnerOperator`` tasks, then as one
  ``BatchAnalyzePartnersOperator`` task. Wall time is the DAG run's own start to end (from the REST API).
  CPU is every process of the deployment (api-server, scheduler, dag-processor, triggerer, executor
  workers, task supervisors and task processes), read from ``/proc`` for the whole process tree of
  ``airflow standalone`` before and after the run: utime + stime of the live processes plus cutime +
  cstime (their reaped children; task processes are reaped by their supervisor). The idle burn of the
  deployment (heartbeats, DAG parsing) is measured for 20 s first; one row includes it, one subtracts
  it. The sign-in limit is on for both runs; the deployment has its own session store, so the mapped
  tasks share the host's session (``session_sharing``, the default).
"""

from __future__ import annotations

import contextlib
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
        batch = hook.batch_analyze_partners(ids, max_concurrency=concurrency)
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
    from airflow_provider_partneros._sessions.async_transport import AsyncSession
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

    ids = _prepare(control_port, n, delay)
    c.setup_connection(control_port)
    settings = PartnerOSHook().settings

    async def run() -> int:
        session = AsyncSession(settings)
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
from airflow_provider_partneros.operators import BatchAnalyzePartnersOperator

with DAG("bench_enrich_batch", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
    BatchAnalyzePartnersOperator(task_id="analyze", partner_ids={ids}, max_concurrency={concurrency})
"""


def _tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds of ``root``'s process tree, per component (each direct child of ``root`` and its
    subtree, named by its command line), including reaped children (cutime + cstime)."""
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
        stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / ticks)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def subtree(pid: int) -> float:
        return stats.get(pid, (0, 0.0))[1] + sum(subtree(child) for child in children.get(pid, []))

    out = {"standalone": stats.get(root, (0, 0.0))[1]}
    for child in children.get(root, []):
        out[_component(child)] = out.get(_component(child), 0.0) + subtree(child)
    return out


def _component(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    for name in ("api_server", "api-server", "scheduler", "dag-processor", "triggerer"):
        if name in cmd:
            return name.replace("_", "-")
    return cmd.strip()[:40] or "?"


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(set(after) | set(before))}


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
    # The deployment's own session store (the default is one per user in /tmp, shared machine-wide).
    out: dict[str, Any] = {"parallelism": parallelism}
    deployment = AirflowDeployment(dags=dags)
    env["AIRFLOW__PARTNEROS__SESSION_DIR"] = str(deployment.home / "partneros-sessions")
    deployment.extra_env.update(env)
    with deployment as airflow:
        out["healthy_after"] = airflow.wait_healthy()
        for dag_id in ("bench_enrich_mapped", "bench_enrich_batch"):
            airflow.wait_for_dag(dag_id, timeout=180)
        assert airflow.process is not None
        root = airflow.process.pid
        time.sleep(10)  # let start-up settle
        cpu0 = _tree_cpu(root)
        time.sleep(20)
        out["idle_cpu_per_s"] = sum(_delta(_tree_cpu(root), cpu0).values()) / 20
        # Both with the sign-in limit ON: mapped tasks share the host's session (session_sharing).
        for label, dag_id, rate_limit in (
            ("batch", "bench_enrich_batch", True),
            ("mapped", "bench_enrich_mapped", True),
        ):
            c.control_call(control_port, "rate_limit", on=rate_limit)
            probe = c.ServerProbe(control_port)
            cpu0 = _tree_cpu(root)
            t0 = time.monotonic()
            run_id = airflow.trigger(dag_id)
            state = _wait(airflow, dag_id, run_id)
            polled = time.monotonic() - t0
            cpu = _delta(_tree_cpu(root), cpu0)
            run = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            wall = _seconds(run["end_date"]) - _seconds(run["start_date"])
            durations = [
                _seconds(ti["end_date"]) - _seconds(ti["start_date"])
                for ti in _task_instances(airflow, dag_id, run_id)
                if ti.get("start_date") and ti.get("end_date")
            ]
            out[label] = {
                "task_seconds": sum(durations),
                "tasks": len(durations),
                "state": state,
                "wall": wall,
                "polled_wall": polled,
                "cpu": sum(cpu.values()),
                "cpu_by_component": cpu,
                "rate_limit": rate_limit,
                "server": probe.delta(),
            }
    return out


def _wait(airflow: Any, dag_id: str, run_id: str, timeout: float = 1800, every: float = 5.0) -> str:
    """Poll the run's state every ``every`` s: the harness's 1 s polling costs the api-server CPU
    that would show in the figures (more polls for the longer run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(every)
        with contextlib.suppress(Exception):  # a busy api-server on a loaded machine: ask again
            state = airflow.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return str(state)
    raise TimeoutError(f"run {run_id} of {dag_id} did not finish in {timeout} s")


def _task_instances(airflow: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run (the REST API pages at 100)."""
    out: list[dict[str, Any]] = []
    while True:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(out)}"
        page = airflow.api("GET", path)
        out += page["task_instances"]
        if not page["task_instances"] or len(out) >= page["total_entries"]:
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
        f"7: {n} enrichments, 16 in flight, analyze_delay as in the job args; median of "
        f"{len(threads)} fresh worker processes each (ABAB order). Every call ok: threads "
        f"{[r['ok'] for r in threads]}, async {[r['ok'] for r in asyncs]}; sign-ins threads "
        f"{[r['server']['sign_ins'] for r in threads]}, async {[r['server']['sign_ins'] for r in asyncs]}."
    )
    return [
        c.Row(
            "7",
            f"batch transport: wall, {n} enrichments, threads over PartnerOSHook vs asyncio over "
            "AsyncSession",
            f"{tw:.2f} s",
            f"{aw:.2f} s",
            c.fmt_ratio(tw / aw),
            notes=[note],
        ),
        c.Row(
            "7",
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
    idle = result["idle_cpu_per_s"]
    b_net, m_net = b["cpu"] - idle * b["polled_wall"], m["cpu"] - idle * m["polled_wall"]
    cpu_ratio = m["cpu"] / b["cpu"]
    net_ratio = m_net / b_net if b_net > 0 else float("inf")

    def parts(run: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.1f}" for k, v in run["cpu_by_component"].items() if abs(v) >= 0.05)

    note = (
        f"7: airflow standalone, LocalExecutor, parallelism {result['parallelism']}, sign-in limit ON for "
        f"both; idle deployment burns {result['idle_cpu_per_s']:.2f} CPU-s per s (included in both CPU "
        f"figures, not subtracted). Runs: batch {b['state']} "
        f"({b['server']['requests'].get(ANALYZE_ROUTE, 0)} analyze calls), mapped {m['state']} ({n} "
        f"analyze calls). Wall = the DAG run's start to end (polled every 5 s: batch "
        f"{b['polled_wall']:.1f} s, mapped {m['polled_wall']:.1f} s); task instances' own run time: batch "
        f"{b['task_seconds']:.1f} s in {b['tasks']} task, mapped {m['task_seconds']:.1f} s summed over "
        f"{m['tasks']} tasks. CPU-s by component (subtree; the scheduler's holds the "
        f"LocalExecutor workers and task processes): batch [{parts(b)}]; mapped [{parts(m)}]."
    )
    return [
        c.Row(
            "7",
            f"{n} partners on a real scheduler: wall, one BatchAnalyzePartnersOperator vs {n} mapped tasks",
            f"{b['wall']:.1f} s",
            f"{m['wall']:.1f} s",
            c.fmt_ratio(wall_ratio),
            ">= 5x faster",
            wall_ratio >= 5 and b["state"] == "success",
            [note],
        ),
        c.Row(
            "7",
            f"{n} partners on a real scheduler: CPU of the whole deployment during the run",
            f"{b['cpu']:.1f} s",
            f"{m['cpu']:.1f} s",
            c.fmt_ratio(cpu_ratio),
            ">= 20x cheaper",
            cpu_ratio >= 20,
        ),
        c.Row(
            "7",
            f"{n} partners on a real scheduler: CPU above the idle deployment's (idle rate x polled wall)",
            f"{b_net:.1f} s",
            f"{m_net:.1f} s",
            c.fmt_ratio(net_ratio),
            "(info)",
        ),
        c.Row(
            "7",
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
