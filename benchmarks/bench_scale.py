"""Fan-out at scale-out: 100 mapped AnalyzePartnerOperator tasks on CeleryExecutor, two worker hosts.

    make bench-scale        # = .venv-scale/bin/python benchmarks/bench_scale.py  (~6 min)
    .venv-scale/bin/python benchmarks/bench_scale.py --fast-only --session-linger 0   # no linger

Starts the scale-out environment of tests/scale (PostgreSQL, Redis, API server, scheduler,
dag-processor, two Celery workers of concurrency 4, two triggerers, the PartnerOS stand-in with its
sign-in limiter of 3 per 10 s per client IP; each worker host has its own egress IP and session
store) and runs the ``scale_fanout`` DAG in the same environment: with shared sessions
(connection ``partneros_default``, default extras) and with per-task sessions (``partneros_per_task``,
``session_sharing: false``), with a fast analyze (0.2 s), then once more shared with a slow one
(3 s, so that tasks on a host overlap). Reports per run: wall time (the DAG run's start to end, as Airflow
records it), tasks failed, successful sign-ins per host, sign-in attempts answered 429, and server
sessions still alive afterwards. Writes .bench-out/scale.md. A benchmark, not a test: nothing is
asserted; the exit code is non-zero only if the environment could not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "scale"))

from harness import CONN_PER_TASK, CONN_SHARED, SIGN_IN_ROUTE, ScaleEnvironment  # noqa: E402

LIMITER_WINDOW = 10.0
FAST_ANALYZE = 0.2
SLOW_ANALYZE = 3.0
"""Seconds the stand-in's analyze takes: fast (tasks overlap little, start-up dominates) and slow
(the real endpoint "can take many seconds": tasks on a host overlap)."""


def _fanout(env: ScaleEnvironment, conn_id: str, analyze_delay: float) -> dict[str, Any]:
    env.server.analyze_delay = analyze_delay
    since = env.server.clock()
    run_id = env.trigger("scale_fanout", {"conn_id": conn_id})
    state = env.wait_for_run("scale_fanout", run_id, timeout=1200)
    run = env.api("GET", f"/dags/scale_fanout/dagRuns/{run_id}")
    wall = (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()
    states = env.states("scale_fanout", run_id, "analyze")
    sign_ins = env.sign_ins_by_host(since=since)
    return {
        "conn_id": conn_id,
        "analyze_delay": analyze_delay,
        "state": state,
        "wall_s": round(wall, 1),
        "succeeded": states["success"],
        "failed": sum(n for s, n in states.items() if s != "success"),
        "sign_ins": sum(sign_ins.values()),
        "sign_ins_by_host": dict(sorted(sign_ins.items())),
        "attempts": sum(env.requests_by_host(SIGN_IN_ROUTE, since=since).values()),
        "rate_limited": sum(env.rate_limited_by_host(since=since).values()),
        # Worker hosts only: a triggerer holds a session for the event-driven DAG's watcher meanwhile.
        "live_sessions": {h: n for h, n in sorted(env.live_sessions_by_host().items()) if h.startswith("w")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="keep the environment's folder (logs, DB)")
    parser.add_argument(
        "--session-linger", type=float, default=None, help="[partneros] session_linger on every host"
    )
    parser.add_argument(
        "--fast-only", action="store_true", help=f"skip the run with a {SLOW_ANALYZE:g} s analyze"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with ScaleEnvironment(keep=args.keep, session_linger=args.session_linger) as env:
        setup_s = time.monotonic() - started
        env.wait_for_dag("scale_fanout")
        plan = [(CONN_SHARED, FAST_ANALYZE), (CONN_PER_TASK, FAST_ANALYZE)]
        if not args.fast_only:
            plan.append((CONN_SHARED, SLOW_ANALYZE))
        for conn_id, delay in plan:
            time.sleep(LIMITER_WINDOW + 1)  # each run starts with a fresh sign-in budget on every host
            rows.append(_fanout(env, conn_id, delay))
            print(f"[bench-scale] {rows[-1]}", flush=True)
    labels = {
        CONN_SHARED: "shared sessions (default)",
        CONN_PER_TASK: "per-task sessions (`session_sharing: false`)",
    }
    lines = [
        "| 100 mapped AnalyzePartnerOperator, 2 worker hosts x 4 slots | analyze takes | wall time "
        "| failed tasks | sign-ins (per host) | sign-in attempts | answered 429 "
        "| live sessions on the workers after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        per_host = ", ".join(f"{h}: {n}" for h, n in r["sign_ins_by_host"].items()) or "-"
        live = sum(r["live_sessions"].values())
        lines.append(
            f"| {labels[r['conn_id']]} | {r['analyze_delay']:g} s | {r['wall_s']} s | {r['failed']} "
            f"| {r['sign_ins']} ({per_host}) "
            f"| {r['attempts']} | {r['rate_limited']} | {live} |"
        )
    table = "\n".join(lines)
    note = (
        f"\nEnvironment up in {setup_s:.0f} s; total {time.monotonic() - started:.0f} s. "
        "Sign-in limit 3 per 10 s per host (egress IP); every run starts with a fresh budget. "
        f"[partneros] session_linger: {'default' if args.session_linger is None else args.session_linger}."
    )
    print(table + note)
    out = REPO / ".bench-out"
    out.mkdir(exist_ok=True)
    (out / "scale.md").write_text(table + "\n" + note + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
