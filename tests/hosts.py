"""Many hosts behind one IP, as real processes: each host is a process forked by one launcher
(``tests/task_processes.py``) with its own environment and ``[partneros] session_dir``, forking its
task processes in turn; all of them reach the stand-in
from 127.0.0.1, as hosts behind a NAT or KubernetesExecutor pods reach PartnerOS from one egress IP.
Every task of every host is released at once through one gate file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
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
    host_env_extra: Callable[[int], dict[str, str]] | None = None,
    options: dict[str, Any] | None = None,
) -> HostsRun:
    """Start ``hosts`` hosts of ``per_host`` tasks each, open the gate, and wait for all of them.
    ``host_env_extra(i)``: more environment for host ``i``; ``options``: more of
    ``tests/task_processes.py``'s config (``hold``, ``start_spread``, ``store_per_child``...)."""
    gate = tmp / "gate"
    host_configs = []
    for index in range(hosts):
        store = tmp / f"host-{index}" / "store"
        store.mkdir(parents=True, mode=0o700)
        host_env = {
            "AIRFLOW__PARTNEROS__SESSION_DIR": str(store),
            **(host_env_extra(index) if host_env_extra else {}),
        }
        host_configs.append({"env": host_env, "out": str(tmp / f"host-{index}" / "out")})
    config = tmp / "hosts.json"
    launcher_config = {
        "n": per_host,
        "calls": calls,
        "gate": str(gate),
        "hosts": host_configs,
        **(options or {}),
    }
    config.write_text(json.dumps(launcher_config))
    common_env = {
        **os.environ,
        "AIRFLOW_CONN_PARTNEROS_DEFAULT": connection_json,
        "AIRFLOW__PARTNEROS__SESSION_LINGER": str(linger),
        **(env or {}),
    }
    with (tmp / "launcher.log").open("wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(config)], env=common_env, stdout=log, stderr=subprocess.STDOUT
        )
    outs = [Path(h["out"]) for h in host_configs]
    deadline = time.monotonic() + timeout
    for out in outs:  # every task process exists and waits at the gate
        while not (out / "pids.json").exists():
            assert launcher.poll() is None, f"the launcher ended early (see {tmp / 'launcher.log'})"
            assert time.monotonic() < deadline, "a host did not start its tasks"
            time.sleep(0.05)
    started = time.monotonic()
    gate.touch()
    launcher.wait(timeout=max(1.0, deadline - time.monotonic()))
    wall = time.monotonic() - started
    results = [json.loads(p.read_text()) for out in outs for p in sorted(out.glob("[0-9]*.json"))]
    assert len(results) == hosts * per_host, "a task process ended without reporting"
    return HostsRun(results, wall)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for ``condition`` (polling); fail naming ``what`` after ``timeout`` seconds."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started
