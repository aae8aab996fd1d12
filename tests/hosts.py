"""Many hosts behind one IP, as real processes: each host is a launcher (``tests/task_processes.py``)
with its own ``[partneros] session_dir``, forking its task processes; all of them reach the stand-in
from 127.0.0.1, as hosts behind a NAT or KubernetesExecutor pods reach PartnerOS from one egress IP.
Every task of every host is released at once through one gate file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).with_name("task_processes.py")


@dataclass
class HostsRun:
    results: list[dict[str, Any]]
    wall: float
    """Seconds from the gate opening until the last task ended."""

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["ok"]]


def run_hosts(
    tmp: Path,
    connection_json: str,
    *,
    hosts: int,
    per_host: int,
    calls: list[str],
    env: dict[str, str] | None = None,
    linger: float = 0.0,
    timeout: float = 600.0,
) -> HostsRun:
    """Start ``hosts`` hosts of ``per_host`` tasks each, open the gate, and wait for all of them."""
    gate = tmp / "gate"
    launchers = []
    outs = []
    for index in range(hosts):
        home = tmp / f"host-{index}"
        store = home / "store"
        store.mkdir(parents=True, mode=0o700)
        out = home / "out"
        config = home / "config.json"
        config.write_text(json.dumps({"n": per_host, "calls": calls, "out": str(out), "gate": str(gate)}))
        host_env = {
            **os.environ,
            "AIRFLOW_CONN_PARTNEROS_DEFAULT": connection_json,
            "AIRFLOW__PARTNEROS__SESSION_DIR": str(store),
            "AIRFLOW__PARTNEROS__SESSION_LINGER": str(linger),
            **(env or {}),
        }
        log = (home / "launcher.log").open("wb")
        launchers.append(
            subprocess.Popen(
                [sys.executable, str(LAUNCHER), str(config)],
                env=host_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        outs.append(out)
    deadline = time.monotonic() + timeout
    for out in outs:  # every task process exists and waits at the gate
        while not (out / "pids.json").exists():
            assert time.monotonic() < deadline, "a host did not start its tasks"
            time.sleep(0.05)
    started = time.monotonic()
    gate.touch()
    for launcher in launchers:
        launcher.wait(timeout=max(1.0, deadline - time.monotonic()))
    wall = time.monotonic() - started
    results = [json.loads(p.read_text()) for out in outs for p in sorted(out.glob("[0-9]*.json"))]
    assert len(results) == hosts * per_host, "a task process ended without reporting"
    return HostsRun(results, wall)
