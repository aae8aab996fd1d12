"""Run N real task processes at once, each doing what one PartnerOS task does.

``python tests/task_processes.py CONFIG.json`` imports the hook once, forks N children (real processes
with their own memory, file descriptors and locks, as Airflow's task runners are), releases them
together, and waits for them. Each child runs::

    with PartnerOSHook() as hook:
        for call in calls: hook.<call>(...)   # with `hold` seconds between calls

and writes ``OUT/<index>.json``: ``{"ok", "error_class", "message", "sign_ins", "shared", "pid"}``.
The launcher writes ``OUT/pids.json`` once the children exist, so a test can SIGKILL one of them;
with ``gate`` set, the children start only once that file exists.

Forking one warmed-up launcher (instead of starting 100 interpreters that each import Airflow) keeps
a 100-process test at a few seconds of CPU; the children are still separate processes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CALLS = {
    "analyze": lambda hook, arg: hook.analyze_partner(arg or "partner-1"),
    "status": lambda hook, arg: hook.get_integration_status(arg or "conn_salesforce_demo"),
}


def child(index: int, config: dict[str, Any], out: Path) -> None:
    from airflow_provider_partneros.exceptions import PartnerOSError
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

    result: dict[str, Any] = {"pid": os.getpid(), "ok": False, "error_class": None, "message": None}
    hook = PartnerOSHook(config.get("conn_id", "partneros_default"))
    try:
        with hook:
            for n, call in enumerate(config["calls"]):
                if n:
                    time.sleep(float(config.get("hold", 0)))
                name, _, arg = call.partition(":")
                CALLS[name](hook, arg)
            result["shared"] = hook.shares_session
            time.sleep(float(config.get("hold_after", 0)))
        result["ok"] = True
    except PartnerOSError as err:
        result.update(error_class=type(err).__name__, message=err.message)
    except Exception as err:  # reported, never hidden: the test asserts on it
        result.update(error_class=type(err).__name__, message=str(err))
    result["sign_ins"] = hook.sign_in_count
    (out / f"{index}.json").write_text(json.dumps(result))


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    import airflow.sdk  # noqa: F401  (warm up before forking: the children start at once)

    from airflow_provider_partneros.hooks import partneros  # noqa: F401

    hosts = config.get("hosts")
    if not hosts:
        run_tasks(config)
        return
    # Several hosts: each a forked process with its own environment (its own session store), whose
    # task processes it forks in turn, so hosts share nothing but what real hosts would.
    host_pids = []
    for host in hosts:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.environ.update(host["env"])
                run_tasks({**config, "out": host["out"]})
            except BaseException:
                code = 1
            os._exit(code)
        host_pids.append(pid)
    for pid in host_pids:
        os.waitpid(pid, 0)


def run_tasks(config: dict[str, Any]) -> None:
    """Fork ``n`` task processes, release them together, wait for them."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    go_read, go_write = os.pipe()
    pids = []
    for index in range(int(config["n"])):
        pid = os.fork()
        if pid == 0:
            os.close(go_write)
            os.read(go_read, 1)  # every child waits here until all exist
            gate = config.get("gate")
            while gate and not os.path.exists(gate):  # and, if asked, until the test opens the gate
                time.sleep(0.01)
            code = 0
            try:
                child(index, config, out)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    (out / "pids.json").write_text(json.dumps(pids))
    os.write(go_write, b"x" * len(pids))
    for pid in pids:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
