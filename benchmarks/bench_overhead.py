"""Benchmark 4: call overhead of ``PartnerOSHook`` over a bare ``requests.Session`` on loopback.

Both clients run in one worker process against the same stand-in (a separate process), each signed
in once, making the same calls: ``GET /api/integrations/{id}/status`` and
``GET /api/integrations/{id}/schema?objectType=Account`` in turn, JSON parsed. Blocks of calls
alternate between the two clients (ABBA order) so drift in machine load hits both alike; the figure
is the median over blocks of the per-call time. Wall time per call is what a task feels (it includes
the server's time, the same for both); client CPU per call (``time.process_time`` of the worker,
which holds no server thread) isolates what the hook itself costs.
"""

from __future__ import annotations

import time
from typing import Any

import _common as c

STATUS_PATH = "/api/integrations/{}/status"
SCHEMA_PATH = "/api/integrations/{}/schema"


def _overhead(control_port: int, calls: int, blocks: int) -> dict[str, Any]:
    import requests

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook
    from airflow_provider_partneros.testing import DEMO_SALESFORCE_CONNECTION as CID

    c.setup_connection(control_port)
    probe = c.ServerProbe(control_port)
    hook = PartnerOSHook()
    bare = requests.Session()
    conn = dict(c.control_call(control_port, "connection"))
    base = conn["host"]
    bare.post(
        base + "/api/auth/sign-in/email",
        json={"email": conn["login"], "password": conn["password"]},
        timeout=60,
    ).raise_for_status()

    def hook_calls(n: int) -> None:
        for i in range(n):
            if i % 2:
                hook.get_integration_schema(CID, "Account")
            else:
                hook.get_integration_status(CID)

    def bare_calls(n: int) -> None:
        for i in range(n):
            if i % 2:
                r = bare.get(base + SCHEMA_PATH.format(CID), params={"objectType": "Account"}, timeout=60)
            else:
                r = bare.get(base + STATUS_PATH.format(CID), timeout=60)
            r.raise_for_status()
            r.json()

    hook_calls(20)  # sign in, warm the pool and the code paths
    bare_calls(20)
    out: dict[str, list[float]] = {"hook_wall": [], "hook_cpu": [], "bare_wall": [], "bare_cpu": []}
    for b in range(blocks):
        order = [("hook", hook_calls), ("bare", bare_calls)]
        if b % 2:
            order.reverse()
        for name, fn in order:
            w0, c0 = time.perf_counter(), time.process_time()
            fn(calls)
            out[f"{name}_wall"].append((time.perf_counter() - w0) / calls)
            out[f"{name}_cpu"].append((time.process_time() - c0) / calls)
    sign_ins = hook.sign_in_count
    hook.close()
    bare.close()
    return {**out, "hook_sign_ins": sign_ins, "server": probe.delta()}


MODES = {"overhead": _overhead}


def jobs(quick: bool) -> list[c.Job]:
    return [
        c.Job("bench_overhead", "overhead", {"calls": 20 if quick else 100, "blocks": 4 if quick else 20})
    ]


def rows(results: list[dict[str, Any]]) -> list[c.Row]:
    r = results[0]
    hw, bw = c.median(r["hook_wall"]), c.median(r["bare_wall"])
    hc, bc = c.median(r["hook_cpu"]), c.median(r["bare_cpu"])
    n = len(r["hook_wall"])
    calls = r["server"]["requests"]
    wall = c.Row(
        "4",
        f"call overhead: wall time per call, PartnerOSHook vs bare requests.Session (median of {n} blocks)",
        c.fmt_us(hw),
        c.fmt_us(bw),
        c.fmt_ratio(hw / bw),
        "<= 1.15x",
        hw / bw <= 1.15,
    )
    cpu = c.Row(
        "4",
        "call overhead: client CPU per call (worker process only; server is another process)",
        c.fmt_us(hc),
        c.fmt_us(bc),
        c.fmt_ratio(hc / bc),
        "<= 1.15x",
        hc / bc <= 1.15,
    )
    wall.notes.append(
        f"4: calls alternate GET status / GET schema?objectType=Account; server saw {calls}; "
        f"the hook signed in {r['hook_sign_ins']} time(s). Server CPU during the run: "
        f"{r['server']['cpu']:.2f} s "
        "(not in the client figures)."
    )
    return [wall, cpu]


if __name__ == "__main__":
    c.worker_main(MODES)
