"""Benchmark 8: N hosts behind one egress IP (a Celery fleet behind a NAT, KubernetesExecutor pods).

Each host is a process tree with its own session store (``tests/hosts.py``), all reaching the stand-in
from 127.0.0.1 with its sign-in limit ON (3 per 10 s per IP, as PartnerOS). With the host's file
store every host signs in once, so N hosts need about ceil(N/3) x 10 s to all be signed in: the
limiter's floor, measured here against the wall time of the same run.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c

sys.path.insert(0, str(c.REPO / "tests"))


def run_file_store(hosts: int, per_host: int) -> dict[str, Any]:
    from hosts import run_hosts

    from airflow_provider_partneros.testing import PartnerOSStandIn

    with tempfile.TemporaryDirectory(prefix="bench-hosts-") as tmp, PartnerOSStandIn() as server:
        server.seed_demo()
        run = run_hosts(
            Path(tmp),
            server.connection_json(extra={"timeout": 10}),
            hosts=hosts,
            per_host=per_host,
            calls=["analyze:partner-1"],
        )
        return {
            "tasks": hosts * per_host,
            "failed": len(run.failed),
            "sign_ins": server.sign_ins,
            "rate_limited": server.sign_in_rate_limited,
            "wall": run.wall,
        }


def rows(quick: bool) -> list[c.Row]:
    shapes = [(6, 1)] if quick else [(12, 2), (24, 1)]
    out = []
    for hosts, per_host in shapes:
        r = run_file_store(hosts, per_host)
        floor = math.ceil(hosts / 3) * 10.0
        value = f"{r['failed']} failed, {r['sign_ins']} sign-ins, {r['rate_limited']} x 429, {r['wall']:.1f}s"
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
    return out
