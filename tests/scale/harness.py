"""A scale-out Airflow deployment on one machine, started and stopped by the tests themselves.

CeleryExecutor on a real PostgreSQL and Redis (Debian packages; ``make system-deps`` installs them),
the API server, scheduler, dag-processor, two Celery workers and two triggerers, and the PartnerOS
stand-in with its sign-in limiter on::

    with ScaleEnvironment() as env:
        run_id = env.trigger("scale_fanout", {"count": 100})
        assert env.wait_for_run("scale_fanout", run_id) == "success"
        env.sign_ins_by_host(since=...)

Hosts. Each worker and each triggerer stands for a host of its own: its own ``[partneros] session_dir``
(the shared-session store is per host), and its own egress address (``egress.EgressForwarder``:
worker ``w1`` reaches the stand-in from 127.0.0.11, ``w2`` from 127.0.0.12, triggerer ``t1`` from
127.0.0.21, ``t2`` from 127.0.0.22), so the stand-in rate-limits and counts each host apart, as a
real PartnerOS sees hosts with different egress IPs. The connection lives only in each host's
environment (``AIRFLOW_CONN_*``), so the password is never in the metadata database unless the
provider puts it there: the secrets audit relies on that.

Processes. PostgreSQL, Redis and every Airflow component run as their own process group
(``start_new_session``) with their own log under ``<root>/logs``; :meth:`stop` signals only those
groups, and :meth:`kill` SIGKILLs one component's group (the fault scenarios).
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests
from egress import EgressForwarder

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # tests/, also for benchmarks/bench_scale.py
    sys.path.append(str(Path(__file__).resolve().parent.parent))
from deployment_harness import AirflowRestApi

from airflow_provider_partneros.testing import DEMO_ORG_ID, PartnerOSStandIn

VENV_BIN = Path(sys.executable).parent
DAGS_DIR = Path(__file__).resolve().parent / "dags"
FINISHED = frozenset({"success", "failed"})
SIGN_IN_ROUTE = "/api/auth/sign-in/email"
SIGN_OUT_ROUTE = "/api/auth/sign-out"
CONN_SHARED = "partneros_default"
CONN_PER_TASK = "partneros_per_task"
CONN_SHORT_LIVED = "partneros_short_lived"
SHARED_HOST = "partneros.scale.test"
"""With the Redis store, every host's connection names this one base URL (one identity, as a real
deployment has); the host's forwarder serves as its HTTP proxy, so each host still reaches the stand-in
from its own address. The name is never resolved: the proxy connects to the stand-in."""
SESSION_STORE_CONN = "partneros_sessions"
SESSION_STORE_DB = 1
"""The deployment-wide session store (:meth:`ScaleEnvironment.use_redis_session_store`): the Celery
broker's Redis, another database, as docs/sessions.md suggests."""
SHORT_SESSION_MAX_AGE = 15
"""``session_max_age`` of ``partneros_short_lived`` (the worker-kill scenario): short enough to see a
killed task's session replaced and signed out within the test."""
SCALE_PARTNER_COUNT = 100
WATCHED_INTEGRATION = "conn_scale_watched"
"""The integration the ``scale_on_sync`` DAG's watcher follows (no other scenario touches it)."""
WORKER_CONCURRENCY = 4
# 50 sensors over two triggerers of capacity 30: neither can take them all, so both run some. After
# one triggerer is killed, the other must have room for every trigger of the kill scenario (20).
TRIGGERER_CAPACITY = 30
# How long a triggerer may miss heartbeats before the other one takes its triggers (default 30 s).
TRIGGERER_HEALTH_THRESHOLD = 10
# How long a task may miss heartbeats before the scheduler fails it (default 300 s), e.g. after its
# worker was SIGKILLed; the retry then runs on a live worker.
TASK_HEARTBEAT_TIMEOUT = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scale_partner_ids(count: int = SCALE_PARTNER_COUNT) -> list[str]:
    """The partners the fan-out analyses (the DAG file the stand-in is seeded with them)."""
    return [f"scale-partner-{i:03d}" for i in range(count)]


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise FileNotFoundError(
        f"PostgreSQL's {name} not found: run `make system-deps` (Debian package postgresql)"
    )


@dataclass
class Host:
    """One "machine" of the deployment: a worker or a triggerer with its own session store and egress IP."""

    name: str
    kind: str  # "worker" | "triggerer"
    egress_ip: str
    session_dir: Path
    log_port: int
    forwarder: EgressForwarder | None = None


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ScaleEnvironment(AirflowRestApi):
    """See the module docstring. ``keep`` leaves the root folder (logs, DB files) for inspection;
    ``session_linger`` sets ``[partneros] session_linger`` on every host (None: the default)."""

    def __init__(
        self,
        *,
        workers: int = 2,
        triggerers: int = 2,
        analyze_delay: float = 0.2,
        session_linger: float | None = None,
        root: Path | None = None,
        keep: bool = False,
    ) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="partneros-scale-"))
        self.root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder below
        self.keep = keep
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home = self.root / "airflow-home"
        self.home.mkdir(exist_ok=True)
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.api_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        self.jwt_secret = secrets.token_urlsafe(32)
        self.server = PartnerOSStandIn()  # sign-in limiter on: 3 per 10 s per client IP
        self.server.analyze_delay = analyze_delay
        self.session_linger = session_linger
        self.redis_session_store = False
        self.hosts: dict[str, Host] = {}
        for i in range(workers):
            self._add_host(f"w{i + 1}", "worker", f"127.0.0.{11 + i}")
        for i in range(triggerers):
            self._add_host(f"t{i + 1}", "triggerer", f"127.0.0.{21 + i}")
        self.components: dict[str, Component] = {}
        self._infra: dict[str, Component] = {}
        self._token: str | None = None
        self.trigger_kwargs_samples: list[bytes] = []
        """Decrypted kwargs of the trigger rows sampled while sensors were deferred (rows go when done)."""
        self.redis_samples: list[bytes] = []
        """Redis contents sampled while tasks were queued (Celery messages exist only then)."""
        self.marker_dir = self.root / "markers"
        self.marker_dir.mkdir()
        self.marker_dir.chmod(0o777)

    def _add_host(self, name: str, kind: str, ip: str) -> None:
        session_dir = self.root / "hosts" / name / "sessions"
        session_dir.parent.mkdir(parents=True)
        self.hosts[name] = Host(name, kind, ip, session_dir, free_port())

    # --- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> ScaleEnvironment:
        try:
            self.start()
        except BaseException:
            self.keep = True
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.keep = True
        self.stop()

    def start(self, timeout: float = 300.0) -> None:
        started = time.monotonic()
        self._start_standin()
        self._start_postgres()
        self._start_redis()
        self._wait_postgres()
        self._run(
            [
                postgres_bin("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                "airflow",
                "airflow",
            ],
            pg=True,
        )
        self._run([str(VENV_BIN / "airflow"), "db", "migrate"], env=self.airflow_env(), log="db-migrate")
        self._launch("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)])
        self._launch("scheduler", ["scheduler"])
        self._launch("dag-processor", ["dag-processor"])
        for host in self.hosts.values():
            self.start_host(host.name)
        self.wait_healthy(timeout=max(30.0, timeout - (time.monotonic() - started)))
        print(
            f"[scale] environment healthy after {time.monotonic() - started:.0f} s in {self.root}",
            file=sys.stderr,
        )

    def start_host(self, name: str) -> None:
        """(Re)start one worker or triggerer, with its own session store, log port and egress."""
        host = self.hosts[name]
        env = self.host_env(host)
        if host.kind == "worker":
            argv = [
                "celery", "worker",
                "--celery-hostname", f"{name}@%h",
                "--concurrency", str(WORKER_CONCURRENCY),
                "--queues", f"default,{name}",  # a task can be sent to this host alone
            ]  # fmt: skip
        else:
            argv = ["triggerer", "--capacity", str(TRIGGERER_CAPACITY)]
        self._launch(name, argv, env=env)

    def stop(self) -> None:
        """Stop every Airflow component (all at once), then Redis and PostgreSQL, each by its own group."""
        self._stop_components(list(self.components.values()), signal.SIGTERM, grace=15)
        self._stop_components(list(self._infra.values()), signal.SIGINT, grace=15)  # postgres: fast shutdown
        # Processes the tasks started in sessions of their own (the session store's steward, which
        # would otherwise linger up to [partneros] session_linger): found by this environment's root.
        _signal_env_holders(f"AIRFLOW__PARTNEROS__SESSION_DIR={self.root}", signal.SIGKILL)
        for host in self.hosts.values():
            if host.forwarder is not None:
                host.forwarder.stop()
                host.forwarder = None
        self.server.stop()
        if self.keep:
            print(f"[scale] environment kept for inspection: {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def kill(self, name: str) -> None:
        """SIGKILL everything of one component, as if its host died: its process group and every process
        of its session (Airflow runs each task in a process group of its own, in the worker's session)."""
        comp = self.components[name]
        assert comp.process is not None
        _signal_session(comp.process.pid, signal.SIGKILL)
        # ... and what its tasks started detached (the session store's steward): a dead host loses those too.
        _signal_env_holders(f"AIRFLOW__PARTNEROS__SESSION_DIR={self.hosts[name].session_dir}", signal.SIGKILL)
        comp.process.wait(timeout=30)
        self._close_log(comp)

    def use_redis_session_store(self) -> None:
        """Restart every worker and triggerer with ``[partneros] session_store_conn_id`` set: from then
        on the whole deployment shares one session through Redis (database ``SESSION_STORE_DB``)."""
        self.redis_session_store = True
        hosts = [self.components[name] for name in self.hosts if name in self.components]
        self._stop_components(hosts, signal.SIGTERM, grace=30)
        for name in self.hosts:
            self.start_host(name)
        self.wait_healthy()

    def ensure_running(self, kinds: Iterable[str] = ("worker", "triggerer")) -> None:
        """Restart any worker or triggerer (of ``kinds``) a previous scenario killed; wait until healthy."""
        restarted = False
        for name, host in self.hosts.items():
            if host.kind in kinds and not self.components[name].alive:
                self.start_host(host.name)
                restarted = True
        if restarted:
            self.wait_healthy()

    # --- the parts --------------------------------------------------------------------------------------

    def _start_standin(self) -> None:
        self.server.seed_demo()
        self.server.add_integration(WATCHED_INTEGRATION, organization=DEMO_ORG_ID)
        for pid in scale_partner_ids():
            self.server.add_partner(
                pid, organization=DEMO_ORG_ID, name=f"Scale {pid}", domain=f"{pid}.example"
            )
        self.server.start()
        target = (self.server.url_host, int(self.server.base_url.rsplit(":", 1)[1].split("/")[0]))
        for host in self.hosts.values():
            host.forwarder = EgressForwarder(target, host.egress_ip).start()

    def _pg_user(self) -> dict[str, Any]:
        """PostgreSQL refuses to run as root: as root, run its programs as the ``postgres`` user."""
        return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}

    def _start_postgres(self) -> None:
        data = self.root / "pg"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        self._run(
            [
                postgres_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "airflow",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            pg=True,
        )
        self._infra["postgres"] = self._spawn(
            "postgres",
            [
                postgres_bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(self.pg_port),
                "-k",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            env=dict(os.environ),
            **self._pg_user(),
        )

    def _wait_postgres(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_infra()
            probe = subprocess.run(
                [postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.pg_port)], capture_output=True
            )
            if probe.returncode == 0:
                return
            time.sleep(0.3)
        raise TimeoutError(f"PostgreSQL not ready in {timeout} s:\n{self.log_tail('postgres')}")

    def _start_redis(self) -> None:
        redis_dir = self.root / "redis"
        redis_dir.mkdir()
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError(
                "redis-server not found: run `make system-deps` (Debian package redis-server)"
            )
        self._infra["redis"] = self._spawn(
            "redis",
            [
                server,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(redis_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            env=dict(os.environ),
        )

    def _check_infra(self) -> None:
        for name, comp in self._infra.items():
            if not comp.alive:
                raise RuntimeError(f"{name} exited early:\n{self.log_tail(name)}")

    # --- environment ------------------------------------------------------------------------------------

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"

    def airflow_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://airflow@127.0.0.1:{self.pg_port}/airflow",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_THRESHOLD),
                "SCALE_MARKER_DIR": str(self.marker_dir),
            }
        )
        return env

    def connection_json(self, host: Host, **extra: Any) -> str:
        """The PartnerOS connection as this host sees it: through its own egress forwarder."""
        assert host.forwarder is not None
        conn = self.server.connection_dict(extra={"timeout": 30, **extra})
        if self.redis_session_store:  # one URL for all; the forwarder is this host's HTTP proxy
            conn["host"] = f"http://{SHARED_HOST}:{self.server.base_url.rsplit(':', 1)[1].split('/')[0]}"
        else:
            conn["host"] = f"http://127.0.0.1:{host.forwarder.port}"
        return json.dumps(conn)

    def host_env(self, host: Host) -> dict[str, str]:
        env = self.airflow_env()
        env.update(
            {
                "SCALE_HOST": host.name,
                "AIRFLOW__PARTNEROS__SESSION_DIR": str(host.session_dir),
                "AIRFLOW_CONN_" + CONN_SHARED.upper(): self.connection_json(host),
                "AIRFLOW_CONN_" + CONN_PER_TASK.upper(): self.connection_json(host, session_sharing=False),
                "AIRFLOW_CONN_" + CONN_SHORT_LIVED.upper(): self.connection_json(
                    host, session_max_age=SHORT_SESSION_MAX_AGE
                ),
            }
        )
        if self.session_linger is not None:
            env["AIRFLOW__PARTNEROS__SESSION_LINGER"] = str(self.session_linger)
        if self.redis_session_store:
            redis_conn = {"conn_type": "redis", "host": "127.0.0.1", "port": self.redis_port,
                          "extra": {"db": SESSION_STORE_DB}}  # fmt: skip
            env["AIRFLOW_CONN_" + SESSION_STORE_CONN.upper()] = json.dumps(redis_conn)
            env["AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID"] = SESSION_STORE_CONN
            assert host.forwarder is not None
            for name in ("HTTP_PROXY", "http_proxy"):
                env[name] = f"http://127.0.0.1:{host.forwarder.port}"
            for name in ("NO_PROXY", "no_proxy"):  # Airflow's own API stays direct
                env[name] = "127.0.0.1,localhost"
        if host.kind == "worker":
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(host.log_port)
        else:
            env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(host.log_port)
        return env

    # --- processes --------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str], **popen: Any) -> Component:
        log_path = self.logs / f"{name}.log"
        comp = Component(name, argv, dict(env), log_path)
        comp.log_file = open(log_path, "ab")  # noqa: SIM115 - closed when the component stops
        comp.process = subprocess.Popen(
            argv,
            env=comp.env,
            cwd=self.root,
            stdout=comp.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop()/kill() signal only that group
            **popen,
        )
        return comp

    def _launch(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        self.components[name] = self._spawn(
            name, [str(VENV_BIN / "airflow"), *argv], env or self.airflow_env()
        )

    def _run(
        self, argv: list[str], *, pg: bool = False, env: Mapping[str, str] | None = None, log: str = ""
    ) -> None:
        kwargs: dict[str, Any] = self._pg_user() if pg else {}
        done = subprocess.run(
            argv, env=env, cwd=self.root, capture_output=True, text=True, timeout=300, **kwargs
        )
        if log:
            (self.logs / f"{log}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            output = done.stdout[-3000:] + done.stderr[-3000:]
            raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}):\n{output}")

    def _stop_components(self, comps: list[Component], sig: signal.Signals, grace: float) -> None:
        """Signal every group at once, give them ``grace`` seconds together, then finish them off."""
        running = [c for c in comps if c.process is not None and c.process.poll() is None]
        for comp in running:
            assert comp.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.process.pid, sig)
        deadline = time.monotonic() + grace
        for comp in running:
            assert comp.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for comp in comps:
            if comp.process is not None:
                # Children may outlive the leader (celery pool; task processes, which Airflow puts in
                # a process group of their own within the session): finish the whole session off.
                _signal_session(comp.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    comp.process.wait(timeout=5)
            self._close_log(comp)

    @staticmethod
    def _close_log(comp: Component) -> None:
        if comp.log_file is not None:
            comp.log_file.close()
            comp.log_file = None

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _check_components(self) -> None:
        self._check_infra()
        for name, comp in self.components.items():
            if comp.process is not None and not comp.alive and comp.log_file is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log_tail(name)}")

    # --- health -----------------------------------------------------------------------------------------

    def wait_healthy(self, timeout: float = 240.0) -> None:
        """API up; scheduler, triggerer and dag-processor heartbeating; every Celery worker ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_components()
            with contextlib.suppress(requests.RequestException, ValueError):
                health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all(health.get(p, {}).get("status") == "healthy" for p in parts) and self._workers_ready():
                    return
            time.sleep(1)
        tails = "\n".join(f"--- {n}\n{self.log_tail(n, 1500)}" for n in self.components)
        raise TimeoutError(f"scale environment not healthy in {timeout} s:\n{tails}")

    def _workers_ready(self) -> bool:
        for name, host in self.hosts.items():
            if host.kind == "worker" and b" ready." not in self.components[name].log_path.read_bytes():
                return False
        return True

    # --- REST API ---------------------------------------------------------------------------------------

    api_timeout = 60.0

    def _check_alive(self) -> None:
        # While the REST API is used, scenarios kill and restart components on purpose: only
        # PostgreSQL and Redis going away is a failure here.
        self._check_infra()

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id, timeout=120.0)
        return super().trigger(dag_id, conf)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included (paged)."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(out)},
            )
            out.extend(page["task_instances"])
            if len(out) >= page["total_entries"] or not page["task_instances"]:
                return out

    def states(self, dag_id: str, run_id: str, task_id: str | None = None) -> Counter[str]:
        return Counter(
            str(ti["state"]) for ti in self.task_instances(dag_id, run_id) if task_id in (None, ti["task_id"])
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_infra()
            with contextlib.suppress(requests.RequestException):
                state = str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
                if state in FINISHED:
                    return state
            time.sleep(2)
        raise TimeoutError(
            f"run {run_id} of {dag_id} not finished in {timeout} s: {self.states(dag_id, run_id)}"
        )

    def wait_for_states(
        self, dag_id: str, run_id: str, task_id: str, state: str, count: int, timeout: float = 300.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if self.states(dag_id, run_id, task_id)[state] >= count:
                    return
            time.sleep(2)
        raise TimeoutError(
            f"{count} x {task_id} not {state} in {timeout} s: {self.states(dag_id, run_id, task_id)}"
        )

    # --- what the stand-in saw, per host ------------------------------------------------------------------

    def host_of(self, client_ip: str) -> str:
        for host in self.hosts.values():
            if host.egress_ip == client_ip:
                return host.name
        return client_ip

    def requests_by_host(
        self, route: str, *, since: float, status: int | None = None, resource: str | None = None
    ) -> Counter[str]:
        """Requests to ``route`` per host since ``since`` (stand-in clock), optionally of one status
        and about one resource (the ``{id}`` of the route, e.g. an integration)."""
        path = route.replace("{id}", resource) if resource is not None else None
        return Counter(
            self.host_of(r.client)
            for r in self.server.request_log
            if r.route == route
            and r.time >= since
            and (status is None or r.status == status)
            and (path is None or r.path == path)
        )

    def live_sessions_by_host(self) -> Counter[str]:
        """Server-side sessions still alive, per host that signed them in (each host has its own
        client address; the stand-in records the one a session was created from, as better-auth does)."""
        counts: Counter[str] = Counter()
        for ip, ids in self.server.live_sessions_by_client().items():
            counts[self.host_of(ip)] += len(ids)
        return counts

    def live_session_ids(self, host: str) -> set[str]:
        """Ids of the server-side sessions still alive that ``host`` signed in (see above)."""
        return {
            sid
            for ip, ids in self.server.live_sessions_by_client().items()
            if self.host_of(ip) == host
            for sid in ids
        }

    def sign_ins_by_host(self, *, since: float) -> Counter[str]:
        return self.requests_by_host(SIGN_IN_ROUTE, since=since, status=200)

    def rate_limited_by_host(self, *, since: float) -> Counter[str]:
        return self.requests_by_host(SIGN_IN_ROUTE, since=since, status=429)

    # --- what the deployment stored ---------------------------------------------------------------------

    def pg_dump(self) -> str:
        done = subprocess.run(
            [postgres_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "airflow", "airflow"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def redis_dump(self) -> list[bytes]:
        """Every key and value in Redis (lists, hashes, sets too), in the broker's database and the
        session store's; Celery's base64 message bodies decoded."""
        import redis

        out: list[bytes] = []
        for db in (0, SESSION_STORE_DB):
            out.extend(self._redis_db_dump(redis.Redis(host="127.0.0.1", port=self.redis_port, db=db)))
        return out

    @staticmethod
    def _redis_db_dump(client: Any) -> list[bytes]:
        out: list[bytes] = []
        for key in client.scan_iter(count=1000):
            out.append(key)
            kind = client.type(key)
            values: Iterable[bytes]
            if kind == b"string":
                values = [client.get(key) or b""]
            elif kind == b"list":
                values = client.lrange(key, 0, -1)
            elif kind == b"hash":
                values = [b for kv in client.hgetall(key).items() for b in kv]
            elif kind == b"set":
                values = client.smembers(key)
            elif kind == b"zset":
                values = client.zrange(key, 0, -1)
            else:
                values = []
            for value in values:
                out.append(value)
                out.extend(_celery_bodies(value))
        client.close()
        return out

    def sample_trigger_kwargs(self) -> int:
        """Decrypt every trigger row's kwargs (Airflow stores them Fernet-encrypted, so a dump shows
        nothing either way) and keep them for the secrets audit; returns how many rows there were."""
        import psycopg2
        from cryptography.fernet import Fernet

        fernet = Fernet(self.fernet_key.encode())
        with (
            contextlib.closing(
                psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="airflow", dbname="airflow")
            ) as db,
            db.cursor() as cursor,
        ):
            cursor.execute("SELECT kwargs FROM trigger")
            rows = [str(row[0]) for row in cursor.fetchall()]
        for value in rows:
            plain = value.encode() if value.startswith("{") else fernet.decrypt(value.encode())
            self.trigger_kwargs_samples.append(plain)
        return len(rows)

    def sample_redis_while_queued(self, marker: bytes, timeout: float = 30.0) -> bool:
        """Keep Redis snapshots until one holds a Celery message mentioning ``marker``; True if seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sample = self.redis_dump()
            self.redis_samples.extend(sample)
            if any(marker in value for value in sample):
                return True
            time.sleep(0.2)
        return False

    def log_files(self) -> list[Path]:
        """Every log this deployment wrote: task logs, trigger logs and each component's own output."""
        return sorted(
            p for folder in (self.logs, self.home / "logs") for p in folder.rglob("*") if p.is_file()
        )


def _signal_session(sid: int, sig: signal.Signals) -> None:
    """Signal every process of session ``sid`` (a component started with ``start_new_session``)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after "pid (comm)": state, ppid, pgrp, session
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(stat.parent.name), sig)


def _signal_env_holders(prefix: str, sig: signal.Signals) -> None:
    """Signal every process whose environment has an entry starting with ``prefix``."""
    needle = prefix.encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            entries = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(needle) for e in entries):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(environ.parent.name), sig)


def _celery_bodies(value: bytes) -> list[bytes]:
    """Kombu keeps a message as JSON with a base64 ``body``: decode it so an audit sees the task arguments."""
    try:
        message = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return []
    if (
        not isinstance(message, dict)
        and isinstance(message, list)
        and message
        and isinstance(message[0], str)
    ):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            message = json.loads(message[0])  # the unacked hash keeps [message, exchange, routing_key]
    if isinstance(message, dict) and isinstance(message.get("body"), str):
        with contextlib.suppress(ValueError):
            return [base64.b64decode(message["body"])]
    return []
