"""One PartnerOS session per host: real task processes at once against the stand-in, limiter on.

Every process here is a real, separate process (forked by ``tests/task_processes.py``) doing what a
task does; they share a session only through the store directory, as tasks on one worker host do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hosts import wait_until

from airflow_provider_partneros._connection.settings import settings_from_connection
from airflow_provider_partneros._sessions.file_store import FileStore
from airflow_provider_partneros._sessions.flows import STEWARD_STARTUP
from airflow_provider_partneros.exceptions import PartnerOSInvalidCredentialsError
from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.testing import DEMO_EMAIL, DEMO_ORG_ID, DEMO_PASSWORD, Fault, PartnerOSStandIn

LAUNCHER = Path(__file__).with_name("task_processes.py")
SIGN_IN = "/api/auth/sign-in/email"


class Tasks:
    """N task processes started together; ``results`` once they have ended."""

    def __init__(
        self, tmp: Path, name: str, *, n: int, calls: list[str], env: dict[str, str], **options: Any
    ):
        self.out = tmp / name
        config = {"n": n, "calls": calls, "out": str(self.out), **options}
        config_file = tmp / f"{name}.json"
        config_file.write_text(json.dumps(config))
        self.n = n
        self.log = (tmp / f"{name}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(config_file)],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def pids(self, timeout: float = 60) -> list[int]:
        deadline = time.monotonic() + timeout
        path = self.out / "pids.json"
        while not path.exists():
            assert time.monotonic() < deadline, "the launcher did not start its children"
            time.sleep(0.05)
        pids: list[int] = json.loads(path.read_text())
        return pids

    def wait(self, timeout: float = 180) -> list[dict[str, Any]]:
        self.process.wait(timeout=timeout)
        self.log.close()
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("[0-9]*.json"))]


@pytest.fixture
def env(standin: PartnerOSStandIn, partneros_session_dir: Path) -> dict[str, str]:
    return connection_env(standin, partneros_session_dir)


def connection_env(
    standin: PartnerOSStandIn,
    store: Path,
    *,
    login: str = DEMO_EMAIL,
    password: str = DEMO_PASSWORD,
    **extra: Any,
) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_PARTNEROS_DEFAULT": standin.connection_json(
            login=login, password=password, extra={"timeout": 10, **extra}
        ),
        "AIRFLOW__PARTNEROS__SESSION_DIR": str(store),
    }


def failures(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if not r["ok"]]


# --- many tasks, one session --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [32, 100])
def test_parallel_task_processes_on_one_host_sign_in_once(
    standin: PartnerOSStandIn, env: dict[str, str], tmp_path: Path, n: int
) -> None:
    # With a linger, as deployments have (60 s by default): on 2 busy cores the first of 100 tasks can
    # finish before the last has started, and the session must still be there for it.
    lingering = {**env, "AIRFLOW__PARTNEROS__SESSION_LINGER": "3"}
    results = Tasks(tmp_path, "tasks", n=n, calls=["analyze:partner-1", "status"], env=lingering).wait()

    assert len(results) == n
    assert failures(results) == []
    assert standin.sign_ins == 1
    assert standin.sign_in_rate_limited == 0
    assert sum(r["sign_ins"] for r in results) == 1
    assert all(r["shared"] for r in results)
    # Unused after the last task, the session is signed out by the host's steward: nothing is left.
    wait_until(lambda: standin.active_sessions == 0, 30, "the steward's sign-out")
    assert standin.sign_outs == 1


def test_without_session_sharing_every_task_signs_in_and_out_on_its_own(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    env = connection_env(standin, partneros_session_dir, session_sharing=False)

    results = Tasks(tmp_path, "tasks", n=3, calls=["status"], env=env).wait()

    assert failures(results) == []
    assert standin.sign_ins == standin.sign_outs == 3
    assert not any(r["shared"] for r in results)
    assert list(partneros_session_dir.iterdir()) == []


def test_a_wrong_password_is_tried_once_for_all_tasks_starting_together(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    env = connection_env(standin, partneros_session_dir, password="wrong-Passw0rd")

    results = Tasks(tmp_path, "tasks", n=20, calls=["status"], env=env).wait()

    assert {r["error_class"] for r in results} == {"PartnerOSInvalidCredentialsError"}
    assert standin.sign_in_attempts == 1
    assert standin.sign_in_rate_limited == 0
    assert all("wrong-Passw0rd" not in r["message"] for r in results)


def test_a_triggerer_and_the_tasks_of_its_host_share_one_session(
    standin: PartnerOSStandIn, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_partneros._sessions.async_transport import load_settings, shared_session

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tasks = Tasks(tmp_path, "tasks", n=4, calls=["status"], env=env, hold_after=3.0)
    tasks.pids()
    deadline = time.monotonic() + 30
    while standin.sign_ins < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    async def triggers() -> tuple[bool, int]:
        settings = await load_settings("partneros_default")
        async with shared_session(settings) as session:
            await session.get_integration_status("conn_salesforce_demo")
            return session.shares_session, session.sign_in_count

    shared, own_sign_ins = asyncio.run(triggers())
    results = tasks.wait()

    assert failures(results) == []
    assert shared
    assert own_sign_ins == 0
    assert standin.sign_ins == 1
    assert standin.active_sessions == 0


# --- rotation and expiry ------------------------------------------------------------------------------


def test_rotation_under_load_signs_in_about_once_per_max_age_and_signs_out_every_replaced_session(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    # 5 s: rotating faster than every 3.4 s would itself trip the 3-per-10-s sign-in limit.
    max_age = 5.0
    env = connection_env(standin, partneros_session_dir, session_max_age=max_age)
    waves = []
    started = time.monotonic()
    for wave in range(10):  # a wave every 1.5 s for 15 s; each task holds its session ~2 s
        waves.append(Tasks(tmp_path, f"wave{wave}", n=6, calls=["status", "status"], env=env, hold=2.0))
        time.sleep(1.5)
    results = [r for tasks in waves for r in tasks.wait()]
    elapsed = time.monotonic() - started

    assert failures(results) == []
    assert standin.sign_in_rate_limited == 0
    # One sign-in per max_age (plus the first), never one per task.
    assert 2 <= standin.sign_ins <= elapsed / max_age + 2
    assert standin.sign_ins < len(results) / 4
    # Every replaced session was signed out, and the last one when its last task ended.
    assert standin.sign_outs == standin.sign_ins
    assert standin.active_sessions == 0


def test_sessions_revoked_server_side_cost_the_host_one_re_sign_in(
    standin: PartnerOSStandIn, env: dict[str, str], tmp_path: Path
) -> None:
    tasks = Tasks(tmp_path, "tasks", n=12, calls=["status", "status"], env=env, hold=3.0)
    tasks.pids()
    deadline = time.monotonic() + 30
    while standin.requests["GET /api/integrations/{id}/status"] < 12:  # all made their first call
        assert time.monotonic() < deadline
        time.sleep(0.05)
    standin.expire_sessions()
    results = tasks.wait()

    assert failures(results) == []
    assert standin.sign_ins == 2
    assert sum(r["sign_ins"] for r in results) == 2
    assert standin.active_sessions == 0


def test_a_task_killed_while_signing_in_does_not_block_the_others(
    standin: PartnerOSStandIn, env: dict[str, str], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    env = {**env, "AIRFLOW__PARTNEROS__SESSION_LINGER": "3"}  # stragglers still find the session
    others = Tasks(tmp_path, "others", n=10, calls=["status"], env=env, gate=str(gate))
    others.pids()  # warmed up and waiting at the gate
    standin.inject(Fault.slow(6.0, SIGN_IN, times=1))
    first = Tasks(tmp_path, "first", n=1, calls=["status"], env=env)
    (victim,) = first.pids()
    deadline = time.monotonic() + 30
    while not any(r.path == SIGN_IN for r in standin.request_log):
        assert time.monotonic() < deadline, "the first task never started signing in"
        time.sleep(0.02)
    gate.touch()  # the others now queue on the store's lock, which the first holds inside its sign-in
    time.sleep(1.0)
    os.kill(victim, signal.SIGKILL)
    results = others.wait(timeout=120)
    first.wait()

    assert failures(results) == []
    assert standin.sign_in_rate_limited == 0
    # The killed task's sign-in may still have created a session nobody holds (the server answers a
    # dead client): at most that one is left, and the others' shared session was signed out.
    assert standin.sign_ins <= 2
    assert sum(r["sign_ins"] for r in results) == 1
    wait_until(lambda: standin.active_sessions <= 1, 30, "the steward's sign-out")


def test_a_task_killed_while_using_the_session_leaves_nothing_once_the_others_finish(
    standin: PartnerOSStandIn, env: dict[str, str], tmp_path: Path
) -> None:
    holders = Tasks(tmp_path, "holders", n=3, calls=["status", "status"], env=env, hold=2.0)
    victim = holders.pids()[0]
    deadline = time.monotonic() + 30
    while standin.requests["GET /api/integrations/{id}/status"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(victim, signal.SIGKILL)
    results = holders.wait()

    assert failures(results) == []
    assert len(results) == 2  # the victim wrote nothing
    assert standin.sign_ins == 1
    # The kernel dropped the victim's lease, so the last survivor out signed the session out.
    assert standin.sign_outs == 1
    assert standin.active_sessions == 0


def test_the_orphan_of_a_killed_last_user_is_signed_out_by_the_next_task_once_too_old(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    env = connection_env(standin, partneros_session_dir, session_max_age=1)
    lone = Tasks(tmp_path, "lone", n=1, calls=["status", "status"], env=env, hold=30.0)
    (victim,) = lone.pids()
    deadline = time.monotonic() + 30
    while standin.requests["GET /api/integrations/{id}/status"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(victim, signal.SIGKILL)
    lone.wait()
    assert standin.active_sessions == 1  # nobody was left to sign it out
    time.sleep(1.2)

    results = Tasks(tmp_path, "next", n=1, calls=["status"], env=env).wait()

    assert failures(results) == []
    assert standin.sign_ins == 2
    assert standin.sign_outs == 2  # the orphan, then the next task's own session
    assert standin.active_sessions == 0


# --- an unused session lingers for the next task, then the steward signs it out --------------------


def test_tasks_that_follow_each_other_share_one_lingering_session(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    # The linger outlasts the gap between two tasks: a launcher's start (importing Airflow), which on a
    # busy 2-core machine takes several seconds.
    env = {**connection_env(standin, partneros_session_dir), "AIRFLOW__PARTNEROS__SESSION_LINGER": "10"}
    results = []
    for n in range(3):  # one after another, never overlapping
        results += Tasks(tmp_path, f"task{n}", n=1, calls=["status"], env=env).wait()

    assert failures(results) == []
    assert standin.sign_ins == 1
    assert standin.active_sessions == 1  # kept for the next task...
    wait_until(lambda: standin.active_sessions == 0, 30, "the steward's sign-out")
    assert standin.sign_outs == 1  # ...and signed out by the host's steward once unused for 10 s


def kill_stewards(store: Path) -> int:
    """SIGKILL the stewards looking after ``store`` (what a KubernetesExecutor pod's end does)."""
    killed = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            is_steward = b"_sessions.steward" in cmdline.read_bytes()
            environ = (cmdline.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if is_steward and f"AIRFLOW__PARTNEROS__SESSION_DIR={store}".encode() in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed += 1
    return killed


def test_a_session_whose_steward_is_gone_is_signed_out_by_a_steward_the_next_task_starts(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    env = {**connection_env(standin, partneros_session_dir), "AIRFLOW__PARTNEROS__SESSION_LINGER": "20"}
    Tasks(tmp_path, "first", n=1, calls=["status"], env=env).wait()
    assert kill_stewards(partneros_session_dir) == 1  # the signer's host is gone, and its steward with it
    time.sleep(STEWARD_STARTUP)  # past the moment a steward just started might still be starting

    results = Tasks(tmp_path, "next", n=1, calls=["status"], env=env).wait()

    assert failures(results) == []
    assert standin.sign_ins == 1  # the next task used the lingering session...
    wait_until(lambda: standin.active_sessions == 0, 45, "a new steward's sign-out")
    assert standin.sign_outs == 1  # ...and left a steward behind that signed it out after the linger


def test_a_lingering_session_is_signed_out_at_its_max_age(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    env = {
        **connection_env(standin, partneros_session_dir, session_max_age=2),
        "AIRFLOW__PARTNEROS__SESSION_LINGER": "600",
    }
    results = Tasks(tmp_path, "task", n=1, calls=["status"], env=env).wait()

    assert failures(results) == []
    wait_until(lambda: standin.active_sessions == 0, 15, "the sign-out at max age")
    assert standin.sign_outs == 1


# --- identities never cross ---------------------------------------------------------------------------


def test_two_users_on_one_host_get_separate_sessions(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    standin.add_user("ops@partneros.test", "ops-Passw0rd!", organizations=[DEMO_ORG_ID])
    demo_env = connection_env(standin, partneros_session_dir)
    ops_env = connection_env(
        standin, partneros_session_dir, login="ops@partneros.test", password="ops-Passw0rd!"
    )
    # Both groups hold their sessions at the same time: had they shared one, there would be one sign-in.
    demo = Tasks(tmp_path, "demo", n=6, calls=["status"], env=demo_env, hold_after=2.0)
    ops = Tasks(tmp_path, "ops", n=6, calls=["status"], env=ops_env, hold_after=2.0)
    results = demo.wait() + ops.wait()

    assert failures(results) == []
    assert standin.sign_ins == 2
    assert standin.sign_outs == 2


def test_a_changed_password_never_reuses_the_old_session(
    standin: PartnerOSStandIn, partneros_session_dir: Path, tmp_path: Path
) -> None:
    holder = Tasks(
        tmp_path,
        "holder",
        n=1,
        calls=["status"],
        env=connection_env(standin, partneros_session_dir),
        hold_after=3.0,
    )
    holder.pids()
    deadline = time.monotonic() + 30
    while standin.sign_ins < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    changed = connection_env(standin, partneros_session_dir, password="not-the-Passw0rd")

    results = Tasks(tmp_path, "changed", n=3, calls=["status"], env=changed).wait()
    holder.wait()

    # With the wrong password the session of the right one is never borrowed: the sign-in is refused.
    assert {r["error_class"] for r in results} == {PartnerOSInvalidCredentialsError.__name__}


def test_store_entries_are_keyed_by_every_part_of_the_identity(partneros_session_dir: Path) -> None:
    def settings(**overrides: Any) -> Any:
        fields = {"login": DEMO_EMAIL, "password": DEMO_PASSWORD, "host": "https://app.partneros.com"}
        extra = overrides.pop("extra", {})
        return settings_from_connection(conn_id="c", **{**fields, **overrides}, extra=extra)

    store = FileStore(partneros_session_dir)
    names = {
        store.entry(settings()).name,
        store.entry(settings(password="other")).name,
        store.entry(settings(login="ops@partneros.test")).name,
        store.entry(settings(host="https://eu.partneros.com")).name,
        store.entry(settings(extra={"organization_id": "org-2"})).name,
    }

    assert len(names) == 5
    assert store.entry(settings()).name == store.entry(settings(extra={"timeout": 3})).name


def test_the_store_holds_no_password_and_its_names_reveal_no_identity(
    standin: PartnerOSStandIn, env: dict[str, str], tmp_path: Path, partneros_session_dir: Path
) -> None:
    tasks = Tasks(tmp_path, "tasks", n=2, calls=["status"], env=env, hold_after=2.0)
    tasks.pids()
    deadline = time.monotonic() + 30
    while standin.sign_ins < 1 or not list(partneros_session_dir.glob("*.json")):  # signed in and stored
        assert time.monotonic() < deadline
        time.sleep(0.05)
    files = [p for p in partneros_session_dir.iterdir() if not p.name.endswith(".tmp")]
    contents = b"".join(p.read_bytes() for p in files if p.exists())
    tasks.wait()

    assert any(p.suffix == ".json" for p in files)
    for secret in (DEMO_PASSWORD, DEMO_EMAIL, DEMO_ORG_ID, f"127.0.0.1:{standin.port}", "partneros.test"):
        assert all(secret not in p.name for p in files)
    assert DEMO_PASSWORD.encode() not in contents
    assert DEMO_EMAIL.encode() not in contents
    # Private: the directory 0700, every file 0600.
    assert partneros_session_dir.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files if p.exists())


# --- an unsafe store slows a task, never fails it -----------------------------------------------------


def _unsafe_world_writable(store: Path) -> Path:
    store.chmod(0o777)
    return store


def _unsafe_other_owner(store: Path) -> Path:
    os.chown(store, 65534, 65534)
    return store


def _unsafe_symlink(store: Path) -> Path:
    real = store.parent / "real-store"
    real.mkdir(mode=0o700)
    link = store.parent / "linked-store"
    link.symlink_to(real)
    return link


@pytest.mark.parametrize(
    ("make_unsafe", "says"),
    [
        (_unsafe_world_writable, "can be read or written by other users"),
        (_unsafe_other_owner, "belongs to another user"),
        (_unsafe_symlink, "is a symlink"),
    ],
    ids=["world-writable", "other-owner", "symlink"],
)
def test_an_unsafe_store_directory_is_refused_with_a_warning_and_the_task_signs_in_alone(
    standin: PartnerOSStandIn,
    partneros_session_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_unsafe: Any,
    says: str,
) -> None:
    if os.getuid() != 0 and make_unsafe is _unsafe_other_owner:
        pytest.skip("chown to another user needs root")  # CI and the dev machines run as root
    store = make_unsafe(partneros_session_dir)
    for name, value in connection_env(standin, store).items():
        monkeypatch.setenv(name, value)

    with PartnerOSHook() as hook:
        assert hook.get_integration_status("conn_salesforce_demo")["status"] == "active"
        assert not hook.shares_session

    warning = " ".join(line for line in capsys.readouterr().out.splitlines() if "warning" in line)
    assert says in warning
    assert str(store) in warning
    assert "AIRFLOW__PARTNEROS__SESSION_DIR" in warning
    assert standin.sign_ins == standin.sign_outs == 1


def test_a_symlinked_state_file_is_refused(
    standin: PartnerOSStandIn,
    partneros_session_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in connection_env(standin, partneros_session_dir).items():
        monkeypatch.setenv(name, value)
    with PartnerOSHook() as hook:
        hook.get_integration_status("conn_salesforce_demo")
    (lock,) = partneros_session_dir.glob("*.lock")
    state = lock.with_suffix(".json")
    state.unlink(missing_ok=True)
    state.symlink_to(partneros_session_dir.parent / "elsewhere.json")

    with PartnerOSHook() as hook:
        assert hook.get_integration_status("conn_salesforce_demo")["status"] == "active"

    assert "is a symlink" in capsys.readouterr().out
    assert not (partneros_session_dir.parent / "elsewhere.json").exists()


# --- threads sharing one hook (issue 15) --------------------------------------------------------------


def _threads_through_one_hook(hook: PartnerOSHook, threads: int, calls: int, midway: Any = None) -> list[Any]:
    errors: list[Any] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for n in range(calls):
            if n == 1 and midway is not None:
                midway()
            try:
                hook.analyze_partner("partner-2")
            except Exception as err:
                errors.append(err)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_sixteen_threads_through_one_hook_sign_in_once(
    standin: PartnerOSStandIn, partneros_session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in connection_env(standin, partneros_session_dir, session_sharing=False).items():
        monkeypatch.setenv(name, value)

    with PartnerOSHook() as hook:
        errors = _threads_through_one_hook(hook, threads=16, calls=3)

    assert errors == []
    assert standin.sign_ins == 1
    assert standin.sign_in_rate_limited == 0
    assert standin.requests["POST /api/partners/{id}/analyze"] == 48


def test_a_session_revoked_under_sixteen_threads_is_renewed_once(
    standin: PartnerOSStandIn, partneros_session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in connection_env(standin, partneros_session_dir, session_sharing=False).items():
        monkeypatch.setenv(name, value)
    revoked = threading.Event()

    def revoke_once() -> None:
        if not revoked.is_set():
            revoked.set()
            standin.expire_sessions()

    with PartnerOSHook() as hook:
        errors = _threads_through_one_hook(hook, threads=16, calls=3, midway=revoke_once)

    assert errors == []
    assert standin.sign_ins == 2
    assert standin.sign_in_rate_limited == 0


# --- where it lives -------------------------------------------------------------------------------------


def test_the_store_settings_are_airflow_config_options(tmp_path: Path) -> None:
    """Declared in the provider info, so `airflow config` knows them and the env variables work."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__PARTNEROS__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    airflow = str(Path(sys.executable).with_name("airflow"))

    def get(option: str, **extra: str) -> str:
        answer = subprocess.run(
            [airflow, "config", "get-value", "partneros", option],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return answer.stdout.strip().splitlines()[-1]

    assert get("session_linger") == "60"
    assert get("session_dir", AIRFLOW__PARTNEROS__SESSION_DIR="/srv/partneros-sessions") == (
        "/srv/partneros-sessions"
    )
    assert get("session_store_conn_id", AIRFLOW__PARTNEROS__SESSION_STORE_CONN_ID="partneros_redis") == (
        "partneros_redis"
    )


def test_a_store_lock_that_never_comes_slows_the_task_but_never_fails_it(
    standin: PartnerOSStandIn,
    partneros_session_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    mocker: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import fcntl

    from airflow_provider_partneros._sessions import lifecycle

    for name, value in connection_env(standin, partneros_session_dir).items():
        monkeypatch.setenv(name, value)
    settings = settings_from_connection(
        conn_id="partneros_default",
        host=standin.base_url,
        login=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        extra={"timeout": 10},
    )
    entry = FileStore(partneros_session_dir).entry(settings)
    # A stuck holder: this process holds the entry's lock for the whole test.
    held = os.open(partneros_session_dir / f"{entry.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    mocker.patch.object(lifecycle, "lock_wait", return_value=0.5)  # the seam: how long to wait
    try:
        with PartnerOSHook() as hook:
            assert hook.get_integration_status("conn_salesforce_demo")["status"] == "active"
            assert not hook.shares_session
    finally:
        os.close(held)

    assert "stayed locked" in capsys.readouterr().out
    assert standin.sign_ins == standin.sign_outs == 1


def test_the_wait_for_another_tasks_sign_in_covers_its_slowest_sign_in() -> None:
    from airflow_provider_partneros._protocol import MAX_RETRY_DELAY
    from airflow_provider_partneros._sessions.flows import LOCK_WAIT, lock_wait

    slow = settings_from_connection(
        conn_id="c", host="https://app.partneros.com", login="a@b.c", password="p", extra={"timeout": 120}
    )
    # Sign-in and the organization switch, each with every retry and wait allowed.
    slowest_sign_in = 2 * (slow.timeout + MAX_RETRY_DELAY) * (slow.max_retries + 1)
    assert lock_wait(slow) > slowest_sign_in
    assert lock_wait(slow.with_overrides(timeout=0.5, max_retries=0)) >= LOCK_WAIT  # never below the floor
