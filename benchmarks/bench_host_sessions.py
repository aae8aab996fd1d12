"""Benchmark 6: 100 task processes starting together on one host, shared vs per-task sessions.

Each process does what one ``AnalyzePartnerOperator`` task does (``with PartnerOSHook() as hook:
hook.analyze_partner(...)``), forked from one warmed-up launcher (``tests/task_processes.py``) so the
figure is the sessions' cost, not 100 Airflow imports. The stand-in runs with its sign-in limit ON
(3 per 10 s per IP, as PartnerOS): the per-task baseline (``session_sharing: false``, what every task
did before the host-wide store) meets it; the shared store should not. Both run in this one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

LAUNCHER = c.REPO / "tests" / "task_processes.py"


def _run(n: int, sharing: bool) -> dict[str, Any]:
    from airflow_provider_partneros.testing import PartnerOSStandIn

    with tempfile.TemporaryDirectory(prefix="bench-host-sessions-") as tmp, PartnerOSStandIn() as server:
        server.seed_demo()
        store = Path(tmp) / "store"
        store.mkdir(mode=0o700)
        out = Path(tmp) / "out"
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"n": n, "calls": ["analyze:partner-1"], "out": str(out)}))
        env = {
            **os.environ,
            "AIRFLOW_CONN_PARTNEROS_DEFAULT": server.connection_json(
                extra={"timeout": 10, "session_sharing": sharing}
            ),
            "AIRFLOW__PARTNEROS__SESSION_DIR": str(store),
            # The burst is the figure; the last task out signs out at once so both variants end clean.
            "AIRFLOW__PARTNEROS__SESSION_LINGER": "0",
        }
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(LAUNCHER), str(config)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )
        wall = time.perf_counter() - started
        results = [json.loads(p.read_text()) for p in out.glob("[0-9]*.json")]
        return {
            "tasks": n,
            "failed": sum(1 for r in results if not r["ok"]),
            "sign_ins": server.sign_ins,
            "attempts": server.sign_in_attempts,
            "rate_limited": server.sign_in_rate_limited,
            "left_alive": server.active_sessions,
            "wall": wall,
        }


def run(quick: bool) -> list[c.Row]:
    n = 10 if quick else 100
    shared = _run(n, sharing=True)
    per_task = _run(n, sharing=False)
    figure = f"{n} task processes at once on one host, shared session vs per-task (limit ON)"

    def describe(r: dict[str, Any]) -> str:
        return (
            f"{r['failed']} failed, {r['sign_ins']} sign-ins ({r['attempts']} attempts, "
            f"{r['rate_limited']} answered 429), {r['wall']:.1f} s"
        )

    met = shared["failed"] == 0 and shared["sign_ins"] == 1 and shared["rate_limited"] == 0
    return [
        c.Row(
            "6",
            figure,
            describe(shared),
            describe(per_task),
            c.fmt_ratio(per_task["wall"] / shared["wall"]) if shared["wall"] else "-",
            "0 failed, 1 sign-in, 0 x 429",
            met,
            [
                f"6: per-task sessions left {per_task['left_alive']} sessions alive on the server; "
                f"shared left {shared['left_alive']} (its last task signed it out)."
            ],
        )
    ]
