"""Benchmark 5: memory of a streamed 20 MB ICP answer (``POST /api/ai/icp``).

For each variant, a fresh worker process signs in and warms up on a small call, then makes one ICP
call while measuring the growth of its memory over what it held just before the call:

* tracemalloc: peak traced bytes during the call minus traced bytes before it (Python allocations);
* peak RSS: VmHWM after the call minus RSS before it, the peak having been reset just before the call
  through /proc/self/clear_refs (everything the process touched: Python, C buffers, sockets).

The two are taken in separate processes (tracemalloc's own tables would inflate RSS). Variants:
``generate_icp`` (returns the parsed document; goal: growth <= 3x the document), ``generate_icp_to_file``
(streams to a file; goal: growth < 10 MB), and the naive baseline ``requests`` ``.json()`` on the
unstreamed answer.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import tracemalloc
from typing import Any

import _common as c

VARIANTS = ("generate_icp", "generate_icp_to_file", "naive_requests_json")


def _icp(control_port: int, variant: str, measure: str, size: int) -> dict[str, Any]:
    from airflow_provider_partneros.hooks.partneros import PartnerOSHook
    from airflow_provider_partneros.testing import DEMO_SALESFORCE_CONNECTION

    c.setup_connection(control_port)
    c.control_call(control_port, "set_icp_size", n=size)
    hook = PartnerOSHook()
    hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)  # sign in, import everything lazy, warm the pool
    session = hook.get_conn()
    out_dir = tempfile.mkdtemp(prefix="partneros-bench-icp-")
    dest = os.path.join(out_dir, "icp.json")
    base = hook.settings.base_url

    def call() -> int:
        if variant == "generate_icp":
            doc = hook.generate_icp("Acme Corp")
            return len(doc)
        if variant == "generate_icp_to_file":
            return hook.generate_icp_to_file("Acme Corp", dest)
        reply = session.post(
            base + "/api/ai/icp", json={"company": "Acme Corp"}, headers={"Origin": base}, timeout=60
        )
        reply.raise_for_status()
        return len(reply.json())

    gc.collect()
    result: dict[str, Any] = {"variant": variant, "measure": measure, "size": size}
    if measure == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        call()
        result["seconds"] = time.perf_counter() - t0
        result["growth"] = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    else:
        rss_before = c.current_rss()
        result["peak_reset"] = c.reset_peak_rss()
        t0 = time.perf_counter()
        call()
        result["seconds"] = time.perf_counter() - t0
        result["growth"] = c.peak_rss() - rss_before
    result["written"] = os.path.getsize(dest) if os.path.exists(dest) else None
    if os.path.exists(dest):
        os.remove(dest)
    os.rmdir(out_dir)
    hook.close()
    return result


MODES = {"icp": _icp}


def size_for(quick: bool) -> int:
    return 2_000_000 if quick else 20_000_000


def jobs(quick: bool) -> list[c.Job]:
    size = size_for(quick)
    return [
        c.Job("bench_streaming", "icp", {"variant": v, "measure": m, "size": size})
        for v in VARIANTS
        for m in ("tracemalloc", "rss")
    ]


def rows(results: list[dict[str, Any]], quick: bool) -> list[c.Row]:
    by = {(r["variant"], r["measure"]): r for r in results}
    size = size_for(quick)
    doc = c.fmt_mb(size)
    written = by[("generate_icp_to_file", "rss")]["written"] or size
    out: list[c.Row] = []
    for measure, label in (("tracemalloc", "tracemalloc"), ("rss", "peak RSS")):
        g = by[("generate_icp", measure)]["growth"]
        out.append(
            c.Row(
                "5",
                f"`generate_icp` peak memory growth, {label} (x document size)",
                c.fmt_mb(g),
                f"{doc} document",
                c.fmt_ratio(g / size),
                "<= 3x",
                g <= 3 * size,
            )
        )
    for measure, label in (("tracemalloc", "tracemalloc"), ("rss", "peak RSS")):
        g = by[("generate_icp_to_file", measure)]["growth"]
        out.append(
            c.Row(
                "5",
                f"`generate_icp_to_file` peak memory growth, {label}",
                c.fmt_mb(g),
                f"{doc} document",
                c.fmt_ratio(g / size),
                "< 10 MB",
                g < 10_000_000,
            )
        )
    for measure, label in (("tracemalloc", "tracemalloc"), ("rss", "peak RSS")):
        g = by[("naive_requests_json", measure)]["growth"]
        ours = by[("generate_icp", measure)]["growth"]
        out.append(
            c.Row(
                "5",
                f"naive baseline: `requests` unstreamed `.json()`, peak growth, {label} "
                "(generate_icp / naive)",
                c.fmt_mb(g),
                f"{c.fmt_mb(ours)} generate_icp",
                c.fmt_ratio(ours / g) if g else "-",
                "(info)",
                None,
            )
        )
    out[0].notes.append(
        f"5: document {written:,} bytes streamed in 16 KiB chunks; each variant x measure in a "
        "fresh process; "
        f"peak-RSS reset via /proc/self/clear_refs: {by[('generate_icp', 'rss')].get('peak_reset')}."
    )
    return out


if __name__ == "__main__":
    c.worker_main(MODES)
