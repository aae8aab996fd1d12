"""Shared plumbing for the benchmarks: the stand-in in its own process, worker subprocesses, the table.

Design rules every benchmark follows:

* The PartnerOS stand-in runs in its **own process** (``standin_proc.py``), so the client figures
  (``time.process_time()``, tracemalloc, RSS) never include the server's CPU or memory. The
  orchestrator and the workers read the server's counters over a small loopback control socket.
* Every measurement runs in a **fresh worker subprocess** (``python benchmarks/<module>.py MODE
  JSON``), which prints one ``RESULT {...}`` line; the orchestrator (``run.py``) never imports Airflow.
* A figure and its baseline are measured in the same run, on the same server process, and reported
  as a ratio: this machine (2 cores, shared with other work) is too noisy for absolute times.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = REPO / ".bench-out"
RESULT_PREFIX = "RESULT "
CONN_ENV = "AIRFLOW_CONN_PARTNEROS_DEFAULT"
STATUS_ROUTE = "GET /api/integrations/{id}/status"
SIGN_IN_ROUTE = "POST /api/auth/sign-in/email"

# --- the table -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    group: str
    figure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    goal: str = "-"
    met: bool | str | None = None
    """True/False for a goal, None for an informational row, or a word ("blocked")."""
    notes: list[str] = field(default_factory=list)

    def met_text(self) -> str:
        if self.met is True:
            return "yes"
        if self.met is False:
            return "**NO**"
        if self.met is None:
            return "-"
        return str(self.met)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} us"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def fmt_kb(n_bytes: float) -> str:
    return f"{n_bytes / 1e3:.1f} KB"


def fmt_ratio(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}x"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def render_table(rows: Sequence[Row]) -> str:
    head = ["#", "figure", "value", "baseline", "ratio", "goal", "met?"]
    body = [[r.group, r.figure, r.value, r.baseline, r.ratio, r.goal, r.met_text()] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    return "\n".join(out)


# --- the machine ---------------------------------------------------------------------------------


def _dist_version(python: str, name: str) -> str:
    code = f"import importlib.metadata as m\ntry: print(m.version({name!r}))\nexcept Exception: print('n/a')"
    try:
        return subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine_info(python: str = sys.executable) -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                cpu = raw.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version() + f" ({platform.python_implementation()})",
        "airflow": _dist_version(python, "apache-airflow"),
        "requests": _dist_version(python, "requests"),
        "httpx": _dist_version(python, "httpx"),
        "os": f"{platform.system()} {platform.release()}",
        "load_at_start": load,
    }


# --- the stand-in process -------------------------------------------------------------------------


class StandIn:
    """A stand-in server in its own process, controlled over a loopback socket (JSON lines)."""

    def __init__(self, *, rate_limit: bool = True) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH_DIR / "standin_proc.py"),
                "--rate-limit",
                "on" if rate_limit else "off",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=worker_env(),
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError("the stand-in process did not start")
        info = json.loads(first)
        self.base_url: str = info["base_url"]
        self.control_port: int = info["control_port"]
        self.pid: int = self.proc.pid

    def call(self, cmd: str, **args: Any) -> Any:
        return control_call(self.control_port, cmd, **args)

    def stats(self) -> dict[str, Any]:
        return dict(self.call("stats"))

    def set_rate_limit(self, on: bool) -> None:
        self.call("rate_limit", on=on)

    def connection_json(self, **extra: Any) -> str:
        conn = dict(self.call("connection"))
        conn["extra"] = {"timeout": 60, **extra}
        return json.dumps(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.call("stop")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def control_call(port: int, cmd: str, **args: Any) -> Any:
    """One request/answer on the stand-in's control socket (usable from workers too)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    answer = json.loads(buf)
    if "error" in answer:
        raise RuntimeError(f"stand-in control {cmd}: {answer['error']}")
    return answer.get("result")


def server_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What happened on the server between two ``stats`` snapshots."""
    reqs_before, reqs_after = before["requests"], after["requests"]
    return {
        "sign_ins": after["sign_ins"] - before["sign_ins"],
        "sign_in_attempts": after["sign_in_attempts"] - before["sign_in_attempts"],
        "requests": {
            k: v - reqs_before.get(k, 0) for k, v in reqs_after.items() if v - reqs_before.get(k, 0)
        },
        "cpu": after["cpu"] - before["cpu"],
    }


# --- workers ----------------------------------------------------------------------------------------


def worker_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of every worker: a throw-away AIRFLOW_HOME, no examples, quiet logs, and a
    session store of its own with no linger, so each figure counts its own sign-ins (a session left
    lingering by an earlier benchmark on this host would otherwise be reused: 0 sign-ins)."""
    env = dict(os.environ)
    home = OUT_DIR / "airflow-home"
    (home / "dags").mkdir(parents=True, exist_ok=True)
    sessions = Path(tempfile.mkdtemp(prefix="bench-sessions-", dir=OUT_DIR))
    env.update(
        {
            "AIRFLOW__PARTNEROS__SESSION_DIR": str(sessions),
            "AIRFLOW__PARTNEROS__SESSION_LINGER": "0",
        }
    )
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        }
    )
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class WorkerError(RuntimeError):
    pass


def run_worker(
    module: str,
    mode: str,
    args: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run ``benchmarks/<module>.py MODE JSON`` in a fresh process and return its RESULT dict."""
    cmd = [sys.executable, str(BENCH_DIR / f"{module}.py"), mode, json.dumps(dict(args or {}))]
    shown = {k: v for k, v in (args or {}).items() if k != "control_port"}
    sys.stderr.write(f"[bench] {module} {mode} {json.dumps(shown)} ... ")
    sys.stderr.flush()
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=worker_env(env), timeout=timeout, check=False, cwd=REPO
    )
    sys.stderr.write(f"{time.perf_counter() - t0:.1f} s\n")
    for raw in reversed(proc.stdout.splitlines()):
        if raw.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(raw[len(RESULT_PREFIX) :])
            return result
    OUT_DIR.mkdir(exist_ok=True)
    log = OUT_DIR / f"failed-{module}-{mode}.log"
    log.write_text(
        f"$ {' '.join(cmd)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise WorkerError(f"{module} {mode} failed (exit {proc.returncode}, log {log}): " + " | ".join(tail))


@dataclass
class Job:
    """One measurement: ``benchmarks/<module>.py``'s ``MODES[mode](**args)``.

    ``rate_limit`` is the stand-in's sign-in limit during the job (switched before it starts).
    """

    module: str
    mode: str
    args: dict[str, Any] = field(default_factory=dict)
    rate_limit: bool = True


def run_jobs(jobs: Sequence[Job], server: StandIn, *, fresh: bool = True) -> list[dict[str, Any]]:
    """Run each job in a fresh worker process (``fresh``), or all of them in one (``--quick``)."""
    if fresh:
        out = []
        for job in jobs:
            server.set_rate_limit(job.rate_limit)
            out.append(run_worker(job.module, job.mode, _job_args(job, server)))
        return out
    items = [
        {"module": j.module, "mode": j.mode, "args": _job_args(j, server), "rate_limit": j.rate_limit}
        for j in jobs
    ]
    results: list[dict[str, Any]] = run_worker("_common", "batch", {"items": items})["results"]
    return results


def _job_args(job: Job, server: StandIn) -> dict[str, Any]:
    return {"control_port": server.control_port, **job.args}


def _batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    import importlib

    results = []
    for item in items:
        control_call(item["args"]["control_port"], "rate_limit", on=item["rate_limit"])
        module = importlib.import_module(item["module"])
        results.append(module.MODES[item["mode"]](**item["args"]))
    return {"results": results}


def emit(result: Mapping[str, Any]) -> None:
    """Workers: hand the result to the orchestrator."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def worker_main(modes: Mapping[str, Any]) -> None:
    """Workers: ``python benchmarks/x.py MODE JSON`` -> call ``modes[MODE](**json)`` and emit it."""
    import faulthandler

    # A stuck worker dumps every thread's stack to stderr (kept in .bench-out/failed-*.log) and exits.
    faulthandler.dump_traceback_later(float(os.environ.get("BENCH_WORKER_TIMEOUT", "420")), exit=True)
    mode, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    emit(modes[mode](**json.loads(raw)))


class ServerProbe:
    """A worker's view of the stand-in's counters (over the control socket)."""

    def __init__(self, control_port: int) -> None:
        self.port = control_port
        self.before = control_call(control_port, "stats")

    def delta(self) -> dict[str, Any]:
        return server_delta(self.before, control_call(self.port, "stats"))


def setup_connection(control_port: int, **extra: Any) -> None:
    """Workers: point ``partneros_default`` at the stand-in (an AIRFLOW_CONN_ env var, JSON form)."""
    conn = dict(control_call(control_port, "connection"))
    conn["extra"] = {"timeout": 60, **extra}
    os.environ[CONN_ENV] = json.dumps(conn)


# --- measuring helpers ----------------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where the kernel can't."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak RSS since the last :func:`reset_peak_rss` (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for raw in f:
            if raw.startswith("VmHWM:"):
                return int(raw.split()[1]) * 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 16384) if hard != resource.RLIM_INFINITY else 16384
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall and process-CPU time of a block (``process_time`` = this process only: all its threads)."""
    out: dict[str, float] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - w0
        out["cpu"] = time.process_time() - c0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    worker_main({"batch": _batch})
