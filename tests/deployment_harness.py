"""A real Airflow deployment on this machine, started and stopped by a test: ``airflow standalone``
(api-server, scheduler, dag-processor, triggerer, LocalExecutor) in a throwaway AIRFLOW_HOME.

Reusable by any test that needs real out-of-process task runs (e.g. checking secret masking in the
task log files under ``$AIRFLOW_HOME/logs``)::

    with AirflowDeployment(dags={"my_dag.py": source}, env={"AIRFLOW_CONN_X": ...}) as airflow:
        airflow.wait_for_dag("my_dag")
        run_id = airflow.trigger("my_dag")
        assert airflow.wait_for_run("my_dag", run_id) == "success"
        text = airflow.task_log("my_dag", run_id, "my_task")

Everything runs in its own process group (``start_new_session=True``); :meth:`stop` signals only that
group (and the groups of components restarted with :meth:`restart_component`). The deployment's own
output goes to ``$AIRFLOW_HOME/standalone.log``; a restarted component's to ``$AIRFLOW_HOME/<name>-<n>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

VENV_BIN = Path(sys.executable).parent
FINISHED = frozenset({"success", "failed"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowRestApi:
    """The REST API of an Airflow deployment with the simple auth manager, as its admin: shared by
    this harness and the scale-out one (``tests/scale/harness.py``).

    Needs ``home`` (the AIRFLOW_HOME holding the generated admin password) and ``base_url``; a
    subclass overrides :meth:`_check_alive` to fail fast when its processes died.
    """

    home: Path
    base_url: str
    api_timeout = 30.0
    _token: str | None = None

    def _check_alive(self) -> None:
        """Raise if the deployment died (waits call it, so a crash fails fast, not at a timeout)."""

    def admin_password(self) -> str:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + 30
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no admin password file at {path}")
            time.sleep(0.2)
        passwords: dict[str, str] = json.loads(path.read_text())
        return passwords["admin"]

    def token(self) -> str:
        if self._token is None:
            answer = requests.post(
                f"{self.base_url}/auth/token",
                json={"username": "admin", "password": self.admin_password()},
                timeout=10,
            )
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}`` with the admin token; returns the parsed JSON."""
        answer = requests.request(
            method,
            f"{self.base_url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=self.api_timeout,
            **kwargs,
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> None:
        """Until the dag-processor has parsed the DAG (it is then known to the API)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(requests.HTTPError):
                self.api("GET", f"/dags/{dag_id}")
                return
            time.sleep(0.5)
        errors = self.api("GET", "/importErrors")
        raise TimeoutError(f"DAG {dag_id} not parsed in {timeout} s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])


class AirflowDeployment(AirflowRestApi):
    """``airflow standalone`` with a small footprint (parallelism 4) on a free port."""

    def __init__(
        self,
        *,
        dags: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        keep_home: bool = False,
    ) -> None:
        self.home = home or Path(tempfile.mkdtemp(prefix="partneros-deploy-airflow-"))
        self.dags_folder = self.home / "dags"
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        for name, source in (dags or {}).items():
            (self.dags_folder / name).write_text(source)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.keep_home = keep_home
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        self._log_file: Any = None
        self.started_at: float | None = None
        self.restarted: list[subprocess.Popen[bytes]] = []
        self._restart_logs: list[Any] = []

    # --- lifecycle -------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        # Drop the test process's own Airflow settings (its home, DB and DAGs folder are not ours).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # A session unused for 2 s is signed out by the host's steward (deployments: 60 s),
                # so a test sees every sign-out soon after its run (see `wait_signed_out`).
                "AIRFLOW__PARTNEROS__SESSION_LINGER": "2",
                "PYTHONUNBUFFERED": "1",
                # Log servers on free ports: several deployments (or a restarted component) on one host.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> AirflowDeployment:
        self._log_file = open(self.home / "standalone.log", "wb")  # noqa: SIM115 - closed in stop()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [str(VENV_BIN / "airflow"), "standalone"],
            env=self.environment(),
            cwd=self.home,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() signals that group only
        )
        return self

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the deployment's process group, then SIGKILL what is left of it."""
        restarted, self.restarted = self.restarted, []
        for extra in restarted:  # signalled first, so they shut down while standalone does
            with contextlib.suppress(ProcessLookupError):
                os.killpg(extra.pid, signal.SIGTERM)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            pgid = process.pid  # start_new_session: the leader's pid is the group id
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGINT)  # standalone stops its components on KeyboardInterrupt
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            # Children may outlive the leader: finish the group off.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
                    time.sleep(0.5)
        for extra in restarted:
            _stop_group(extra, grace)
        for log in self._restart_logs:
            log.close()
        self._restart_logs = []
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> AirflowDeployment:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.keep_home = True  # leave the logs for the failure report
            print(f"Airflow deployment kept for inspection: {self.home}", file=sys.stderr)
        self.stop()

    # --- one component at a time ----------------------------------------------------------------------

    def component_pids(self, name: str) -> list[int]:
        """``airflow <name>`` processes of this deployment (standalone's child or a restarted one) and
        every process below them (e.g. the triggerer's trigger runner), parents first."""
        groups = {p.pid for p in [self.process, *self.restarted] if p is not None}
        tops = [
            pid
            for pid, (pgid, _ppid, argv) in _processes().items()
            if pgid in groups and _runs_airflow_command(argv, name)
        ]
        return _with_descendants(tops)

    def kill_component(self, name: str) -> list[int]:
        """SIGKILL one component (a crash, no clean shutdown) with everything it started."""
        pids = self.component_pids(name)
        if not pids:
            raise RuntimeError(f"no running 'airflow {name}' in this deployment:\n{self.output()}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def restart_component(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``airflow <name>`` again, in its own process group (stopped by :meth:`stop`)."""
        log = open(self.home / f"{name}-{len(self.restarted) + 1}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._restart_logs.append(log)
        process = subprocess.Popen(
            [str(VENV_BIN / "airflow"), name],
            env=self.environment(),
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.restarted.append(process)
        return process

    def component_output(self, name: str) -> str:
        """Everything restarted copies of ``name`` printed (standalone's copy prints to :meth:`output`)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.home.glob(f"{name}-*.log")))

    def output(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of standalone's combined output (for failure messages)."""
        path = self.home / "standalone.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    # --- waiting -----------------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited early:\n{self.output()}")

    def wait_healthy(self, timeout: float = 240.0) -> float:
        """Wait for the API server and for scheduler, triggerer and dag-processor heartbeats."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(requests.RequestException, ValueError):
                health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).json()
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all(health.get(p, {}).get("status") == "healthy" for p in parts):
                    return time.monotonic() - (self.started_at or 0)
            time.sleep(0.5)
        raise TimeoutError(f"Airflow did not become healthy in {timeout} s:\n{self.output()}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 120.0, seen_states: set[str] | None = None
    ) -> str:
        """Wait until the run finishes; ``seen_states`` collects every task state observed on the way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                state = self.run_state(dag_id, run_id)
                if seen_states is not None:
                    seen_states.update(
                        f"{task}:{ti.get('state')}"
                        for task, ti in self.task_instances(dag_id, run_id).items()
                    )
            except requests.RequestException:  # a busy API server (SQLite, a loaded machine): ask again
                time.sleep(1)
                continue
            if state in FINISHED:
                return state
            time.sleep(1)
        raise TimeoutError(f"run {run_id} of {dag_id} did not finish in {timeout} s:\n{self.output()}")

    # --- logs ---------------------------------------------------------------------------------------------

    def task_log_files(
        self, dag_id: str, run_id: str | None = None, task_id: str | None = None
    ) -> list[Path]:
        """Task log files of real runs (worker and triggerer output for a task end up here)."""
        root = self.home / "logs" / f"dag_id={dag_id}"
        if run_id is not None:
            root = root / f"run_id={run_id}"
        pattern = f"**/task_id={task_id}/**/*" if task_id else "**/*"
        return sorted(p for p in root.glob(pattern) if p.is_file())

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.task_log_files(dag_id, run_id, task_id))


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _processes() -> dict[int, tuple[int, int, list[str]]]:
    """pid -> (process group, parent pid, argv) of every process visible in /proc (Linux)."""
    found: dict[int, tuple[int, int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        found[int(entry.name)] = (int(fields[2]), int(fields[1]), [a for a in argv if a])
    return found


def _runs_airflow_command(argv: list[str], name: str) -> bool:
    """``.../python .../bin/airflow <name> ...`` (or a process title set to ``airflow <name> ...``)."""
    if len(argv) == 1:
        argv = argv[0].split()
    return any(Path(a).name == "airflow" and argv[i + 1 : i + 2] == [name] for i, a in enumerate(argv))


def _with_descendants(tops: list[int]) -> list[int]:
    table = _processes()
    out = list(tops)
    frontier = list(tops)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (_g, ppid, _a) in table.items() if ppid == parent and pid not in out]
        out.extend(children)
        frontier.extend(children)
    return out


def wait_signed_out(server: Any, timeout: float = 30.0) -> None:
    """Wait until the stand-in has no live session: the host's steward signs the shared session out
    once it has been unused for ``session_linger`` seconds."""
    deadline = time.monotonic() + timeout
    while server.active_sessions and time.monotonic() < deadline:
        time.sleep(0.2)


__all__ = ["AirflowDeployment", "AirflowRestApi", "free_port", "wait_signed_out"]
