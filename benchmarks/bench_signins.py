"""Benchmark 1 (sync half): sign-ins of a task making 100 calls and of a poke-mode sensor poking 50 times.

The stand-in counts successful sign-ins. The provider's figures run with the sign-in rate limit ON
(3 per 10 s per IP, as PartnerOS does); the naive baselines (``naive.py``: a new session and a
sign-in per call, what ``HttpHook``-style code gives) cannot live within it, so the limit is switched
off for them. The sensor runs through its real ``execute()`` in poke mode (``poke_interval=0``) until
the integration's scripted status document shows a fresh sync on the 50th poke.
"""

from __future__ import annotations

import time
from typing import Any

import _common as c

SYNCED_AFTER = "2030-01-01T00:00:00Z"
STALE = {"last_sync_at": "2026-01-01T00:00:00.000Z"}
FRESH = {"last_sync_at": "2099-01-01T00:00:00.000Z"}


def _task_calls(control_port: int, kind: str, calls: int) -> dict[str, Any]:
    from airflow_provider_partneros.testing import DEMO_SALESFORCE_CONNECTION as CID

    c.setup_connection(control_port)
    probe = c.ServerProbe(control_port)
    t0 = time.perf_counter()
    if kind == "provider":
        from airflow_provider_partneros.hooks.partneros import PartnerOSHook

        with PartnerOSHook() as hook:
            for _ in range(calls):
                hook.get_integration_status(CID)
    else:
        from naive import NaiveClient

        client = NaiveClient()
        for _ in range(calls):
            client.call("GET", f"/api/integrations/{CID}/status")
    wall = time.perf_counter() - t0
    return {"kind": kind, "calls": calls, "wall": wall, "server": probe.delta()}


def _sensor_pokes(control_port: int, kind: str, pokes: int) -> dict[str, Any]:
    c.setup_connection(control_port)
    cid = f"conn_bench_pokes_{kind}"
    c.control_call(control_port, "add_integration", connection_id=cid)
    c.control_call(
        control_port, "script_integration", connection_id=cid, states=[STALE] * (pokes - 1) + [FRESH]
    )
    if kind == "provider":
        from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

        sensor: Any = IntegrationStatusSensor(
            task_id="wait_for_sync",
            connection_id=cid,
            synced_after=SYNCED_AFTER,
            mode="poke",
            poke_interval=0,
            timeout=600,
        )
    else:
        from naive import NaiveIntegrationStatusSensor

        sensor = NaiveIntegrationStatusSensor(
            task_id="wait_for_sync",
            connection_id=cid,
            synced_after=SYNCED_AFTER,
            mode="poke",
            poke_interval=0,
            timeout=600,
        )
    probe = c.ServerProbe(control_port)
    t0 = time.perf_counter()
    document = sensor.execute({})
    wall = time.perf_counter() - t0
    delta = probe.delta()
    return {
        "kind": kind,
        "pokes": delta["requests"].get(c.STATUS_ROUTE, 0),
        "done": isinstance(document, dict) and document.get("lastSyncAt", "").startswith("2099"),
        "wall": wall,
        "server": delta,
    }


MODES = {"task_calls": _task_calls, "sensor_pokes": _sensor_pokes}


def jobs(quick: bool) -> list[c.Job]:
    calls = 20 if quick else 100
    pokes = 10 if quick else 50
    return [
        c.Job("bench_signins", "task_calls", {"kind": "provider", "calls": calls}, rate_limit=True),
        c.Job("bench_signins", "task_calls", {"kind": "naive", "calls": calls}, rate_limit=False),
        c.Job("bench_signins", "sensor_pokes", {"kind": "provider", "pokes": pokes}, rate_limit=True),
        c.Job("bench_signins", "sensor_pokes", {"kind": "naive", "pokes": pokes}, rate_limit=False),
    ]


def rows(results: list[dict[str, Any]]) -> list[c.Row]:
    task, task_naive, sensor, sensor_naive = results
    out = []
    s, b = task["server"]["sign_ins"], task_naive["server"]["sign_ins"]
    out.append(
        c.Row(
            "1",
            f"sign-ins: one task making {task['calls']} calls through PartnerOSHook",
            str(s),
            f"{b} (naive, limit off)",
            c.fmt_ratio(b / s) + " fewer" if s else "-",
            "1",
            s == 1,
        )
    )
    s, b = sensor["server"]["sign_ins"], sensor_naive["server"]["sign_ins"]
    out.append(
        c.Row(
            "1",
            f"sign-ins: poke-mode IntegrationStatusSensor, {sensor['pokes']} pokes (real execute())",
            str(s),
            f"{b} (naive, limit off)",
            c.fmt_ratio(b / s) + " fewer" if s else "-",
            "1",
            s == 1 and sensor["done"],
        )
    )
    out[0].notes.append(
        "1: provider figures ran with the stand-in's sign-in rate limit ON (3 per 10 s per IP); the naive "
        "baselines (new session + sign-in per call/poke, as HttpHook-style code does) ran with it OFF, since "
        "they cannot live within it. "
        f"Task: provider {task['server']['requests']}, naive {task_naive['server']['requests']}. "
        "Sensor: provider "
        f"{sensor['pokes']} pokes, finished={sensor['done']}, server saw "
        f"{sensor['server']['requests']}; naive {sensor_naive['pokes']} pokes."
    )
    return out


if __name__ == "__main__":
    c.worker_main(MODES)
