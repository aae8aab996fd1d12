"""Run the provider's benchmarks and print one table.

    python benchmarks/run.py            # the full run (`make bench`): a few minutes
    python benchmarks/run.py --quick    # every benchmark at tiny sizes, as a smoke run (~30 s)
    python benchmarks/run.py --only 1,3 # some of them

Benchmarks (issue 6): 1 sign-ins, 2 triggerer scale, 3 DAG-parse cost, 4 call overhead, 5 streaming;
6 (issue 10): 100 task processes on one host, shared vs per-task sessions;
8 (issue 18): N hosts behind one IP, host file stores vs the deployment's Redis store;
7 (issue 15) batch enrichment: threads vs asyncio, and 200 mapped tasks vs one batch task on a real
scheduler (``airflow standalone``; several minutes on its own: ``--only 7``).
Each figure is measured against the PartnerOS stand-in (in its own process) with its baseline
measured in the same run, and reported as a ratio. See docs/benchmarks.md for how to read them.
Benchmarks are not tests: a missed goal is reported, not failed; the exit code is non-zero only when
a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import bench_batch
import bench_host_sessions
import bench_hosts
import bench_import
import bench_overhead
import bench_signins
import bench_streaming
import bench_triggers

TRIGGER_FILE = c.REPO / "airflow_provider_partneros/triggers/integration.py"
SENSOR_FILE = c.REPO / "airflow_provider_partneros/sensors/integration.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one worker process: a smoke run")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8", help="comma-separated benchmark numbers")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    quick: bool = args.quick
    started = time.perf_counter()
    command = "python benchmarks/run.py" + (" " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    c.OUT_DIR.mkdir(exist_ok=True)
    machine = c.machine_info()
    have_trigger, have_sensor = TRIGGER_FILE.exists(), SENSOR_FILE.exists()

    rows: list[c.Row] = []
    errors: list[str] = []

    # (group, jobs, turn results into rows) for everything that talks to the stand-in.
    plans: list[tuple[str, list[c.Job], Callable[[list[dict[str, Any]]], list[c.Row]]]] = []
    if "4" in only:
        plans.append(("4", bench_overhead.jobs(quick), bench_overhead.rows))
    if "5" in only:
        plans.append(("5", bench_streaming.jobs(quick), lambda r: bench_streaming.rows(r, quick)))
    if "7" in only:
        plans.append(("7", bench_batch.jobs(quick), bench_batch.rows))
    if "1" in only:
        if have_sensor:
            plans.append(("1", bench_signins.jobs(quick), bench_signins.rows))
        else:
            rows.append(
                _blocked("1", "sign-ins: task calls and poke-mode sensor", "the sensor module is missing")
            )
        if have_trigger:
            plans.append(("1", bench_triggers.signin_jobs(quick), bench_triggers.signin_rows))
        else:
            rows.append(
                _blocked("1", "sign-ins: 200 deferred sensors' triggers", "the trigger module is missing")
            )
    if "2" in only:
        if have_trigger:
            plans.append(("2", bench_triggers.scale_jobs(quick), bench_triggers.scale_rows))
        else:
            rows.append(
                _blocked("2", "triggerer scale (1,000 triggers)", "IntegrationStatusTrigger is missing")
            )

    if "3" in only:
        try:
            rows += bench_import.run(quick)
        except Exception as err:
            errors.append(f"3: {err}")
            rows.append(_failed("3", "DAG-parse cost", err))

    if "6" in only:
        try:
            rows += bench_host_sessions.run(quick)
        except Exception as err:
            errors.append(f"6: {err}")
            rows.append(_failed("6", "host-wide sessions", err))

    if "8" in only:
        try:
            rows += bench_hosts.rows(quick)
        except Exception as err:
            errors.append(f"8: {err}")
            rows.append(_failed("8", "hosts behind one IP", err))

    if plans:
        with c.StandIn(rate_limit=True) as server:
            if quick:
                # One worker process for everything: Airflow is imported once (seconds on this machine).
                all_jobs = [job for _, jobs, _ in plans for job in jobs]
                try:
                    results = c.run_jobs(all_jobs, server, fresh=False)
                except Exception as err:
                    errors.append(f"quick batch: {err}")
                    rows.append(_failed(",".join(sorted({g for g, _, _ in plans})), "quick batch", err))
                    results = []
                if results:
                    at = 0
                    for group, jobs, to_rows in plans:
                        part = results[at : at + len(jobs)]
                        at += len(jobs)
                        rows += _safe_rows(group, to_rows, part, errors)
            else:
                for group, jobs, to_rows in plans:
                    try:
                        results = c.run_jobs(jobs, server, fresh=True)
                    except Exception as err:
                        errors.append(f"{group}: {err}")
                        rows.append(_failed(group, "benchmark", err))
                        continue
                    rows += _safe_rows(group, to_rows, results, errors)

    if "7" in only:
        # A real deployment (scheduler, api-server, workers): its own stand-in process, own worker.
        with c.StandIn(rate_limit=True) as server:
            try:
                result = c.run_worker(
                    "bench_batch",
                    "deployment",
                    {"control_port": server.control_port, **bench_batch.deployment_args(quick)},
                    env={"BENCH_WORKER_TIMEOUT": "3000"},
                    timeout=3000,
                )
                rows += _safe_rows("7", lambda r: bench_batch.deployment_rows(r[0]), [result], errors)
            except Exception as err:
                errors.append(f"7 deployment: {err}")
                rows.append(_failed("7", "mapped vs batch on a real scheduler", err))

    rows.sort(key=lambda r: r.group)
    elapsed = time.perf_counter() - started
    report = _report(rows, machine, command, quick, elapsed, errors)
    print(report)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (c.OUT_DIR / ("results-quick.md" if quick else "results.md")).write_text(report + "\n")
    (c.OUT_DIR / ("results-quick.json" if quick else "results.json")).write_text(
        json.dumps(
            {
                "when": stamp,
                "command": command,
                "machine": machine,
                "quick": quick,
                "rows": [r.__dict__ for r in rows],
                "errors": errors,
            },
            indent=2,
        )
    )
    return 1 if errors else 0


def _safe_rows(
    group: str,
    to_rows: Callable[[list[dict[str, Any]]], list[c.Row]],
    results: list[dict[str, Any]],
    errors: list[str],
) -> list[c.Row]:
    try:
        return to_rows(results)
    except Exception as err:
        errors.append(f"{group}: {err}")
        traceback.print_exc()
        return [_failed(group, "benchmark", err)]


def _blocked(group: str, figure: str, why: str) -> c.Row:
    return c.Row(group, figure, "-", "-", "-", "-", "blocked", [f"{group}: blocked: {why} in this checkout."])


def _failed(group: str, figure: str, err: BaseException) -> c.Row:
    return c.Row(group, figure, "-", "-", "-", "-", "FAILED", [f"{group}: failed: {err}"])


def _report(
    rows: list[c.Row], machine: dict[str, str], command: str, quick: bool, elapsed: float, errors: list[str]
) -> str:
    lines = [
        "PartnerOS provider benchmarks"
        + (" (QUICK smoke run: tiny sizes, not the figures)" if quick else ""),
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['os']}, load at start "
        f"{machine['load_at_start']}",
        f"software: Python {machine['python']}, apache-airflow {machine['airflow']}, requests "
        f"{machine['requests']}, "
        f"httpx {machine['httpx']}",
        f"command: {command}   (took {elapsed:.0f} s)",
        "stand-in: its own process on 127.0.0.1; client CPU and memory are the worker process's "
        "only. Sign-in rate "
        "limit (3 per 10 s per IP) ON for the provider's figures, OFF for the naive baselines "
        "(they cannot live "
        "within it).",
        "",
        c.render_table(rows),
        "",
        "notes:",
    ]
    for row in rows:
        lines += [f"- {note}" for note in row.notes]
    if errors:
        lines += ["", "errors (see .bench-out/failed-*.log):"] + [f"- {e}" for e in errors]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
