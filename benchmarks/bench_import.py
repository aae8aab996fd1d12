"""Benchmark 3: DAG-parse cost, the extra import time of the provider over ``import airflow.sdk``.

Each sample is a fresh interpreter that imports ``airflow.sdk`` (timed: the baseline), then what a DAG
file imports (timed: the figure): the sensor module and its class in one sample, the operators module
and all its operator classes in another. The median over the samples is reported, one row each. The
provider's modules get a bytecode cache (in ``.bench-out/pycache`` via PYTHONPYCACHEPREFIX, warmed
by one unmeasured run) as they would when installed from a wheel; this machine sets
PYTHONDONTWRITEBYTECODE=1, which would otherwise recompile the editable checkout in every process.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from typing import Any

import _common as c

SENSOR_MODULE = "airflow_provider_partneros.sensors.integration"
OPERATORS_MODULE = "airflow_provider_partneros.operators"
HOOK_MODULE = "airflow_provider_partneros.hooks.partneros"
GOALS = {SENSOR_MODULE: 0.030, OPERATORS_MODULE: 0.010}
"""Seconds over ``import airflow.sdk``; the operators' goal is issue 19's (they used to cost ~50 ms)."""
HTTP_MODULES = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "certifi", "ssl")


def target_module() -> str:
    """The sensor module if it exists in the checkout, else the hook module."""
    return (
        SENSOR_MODULE
        if (c.REPO / "airflow_provider_partneros/sensors/integration.py").exists()
        else HOOK_MODULE
    )


# --- worker ------------------------------------------------------------------------------------


def _import_sample(module: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401

    t1 = time.perf_counter()
    before = set(sys.modules)
    importlib.import_module(module)
    if module == SENSOR_MODULE:
        from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor  # noqa: F401
    if module == OPERATORS_MODULE:  # every class, as a DAG file using all of them would
        operators = importlib.import_module(OPERATORS_MODULE)
        for name in operators.__all__:
            getattr(operators, name)
    t2 = time.perf_counter()
    new = set(sys.modules) - before
    return {
        "sdk": t1 - t0,
        "extra": t2 - t1,
        "new_http_modules": sorted(m for m in HTTP_MODULES if m in new),
        "already_loaded_http": sorted(m for m in HTTP_MODULES if m in before),
        "new_module_count": len(new),
        "provider_modules": sorted(m for m in new if m.startswith("airflow_provider_partneros")),
    }


# --- orchestration -----------------------------------------------------------------------------


def run(quick: bool) -> list[c.Row]:
    modules = [target_module()]
    if (c.REPO / "airflow_provider_partneros/operators/__init__.py").exists():
        modules.append(OPERATORS_MODULE)
    rows: list[c.Row] = []
    for module in modules:
        rows += _rows(module, quick)
    return rows


def _rows(module: str, quick: bool) -> list[c.Row]:
    pycache = c.OUT_DIR / "pycache"
    cached_env: dict[str, str | None] = {"PYTHONPYCACHEPREFIX": str(pycache), "PYTHONDONTWRITEBYTECODE": None}
    if quick:  # a smoke run: one sample, no cache warm-up (the provider is compiled from source)
        cached_env = {}
    else:
        c.run_worker("bench_import", "sample", {"module": module}, env=cached_env)  # warm the cache
    n = 1 if quick else 11
    samples = [c.run_worker("bench_import", "sample", {"module": module}, env=cached_env) for _ in range(n)]
    extra = c.median([s["extra"] for s in samples])
    sdk = c.median([s["sdk"] for s in samples])
    last = samples[-1]
    what = {
        SENSOR_MODULE: "sensor module",
        OPERATORS_MODULE: "operators module (every operator class)",
    }.get(module, "hook module (sensor not in the tree yet)")
    goal = GOALS.get(module, 0.030)
    row = c.Row(
        "3",
        f"extra import time of the {what} over `import airflow.sdk` (median of {n} fresh processes)",
        c.fmt_ms(extra),
        f"{c.fmt_ms(sdk)} (`import airflow.sdk`)",
        c.fmt_ratio(extra / sdk) if sdk else "-",
        f"< {goal * 1000:.0f} ms",
        extra < goal,
    )
    row.notes.append(
        f"3: imported `{module}`; HTTP modules it pulled in beyond airflow.sdk: "
        f"{last['new_http_modules'] or 'none'} (already loaded by airflow.sdk: "
        f"{last['already_loaded_http']}); "
        f"{last['new_module_count']} new modules in all, the provider's: {_short(last['provider_modules'])}. "
        f"Spread of the extra time: "
        f"{c.fmt_ms(min(s['extra'] for s in samples))} .. {c.fmt_ms(max(s['extra'] for s in samples))}."
    )
    rows = [row]
    if not quick:
        # This machine's default for the editable checkout: site-packages have their bytecode (the venv
        # was built with UV_COMPILE_BYTECODE=1) but the provider's own modules are compiled every time.
        raw_env: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": None}
        raw = [c.run_worker("bench_import", "sample", {"module": module}, env=raw_env) for _ in range(5)]
        raw_extra = c.median([s["extra"] for s in raw])
        raw_sdk = c.median([s["sdk"] for s in raw])
        rows.append(
            c.Row(
                "3",
                "same, provider compiled from source each time (editable checkout, "
                "PYTHONDONTWRITEBYTECODE=1; median of 5)",
                c.fmt_ms(raw_extra),
                c.fmt_ms(raw_sdk),
                c.fmt_ratio(raw_extra / raw_sdk) if raw_sdk else "-",
                "(info)",
                None,
            )
        )
    return rows


def _short(modules: list[str]) -> str:
    return ", ".join(m.removeprefix("airflow_provider_partneros") or "(package)" for m in modules)


if __name__ == "__main__":
    c.worker_main({"sample": _import_sample})
