"""Run every example DAG end to end in real Airflow against the built-in PartnerOS stand-in.

``make demo`` runs this with the dev venv. In one process it:

1. starts the stand-in PartnerOS server seeded with the demo data,
2. makes a throwaway AIRFLOW_HOME (SQLite metadata DB, created in-process),
3. points the ``partneros_default`` connection at the stand-in (``AIRFLOW_CONN_PARTNEROS_DEFAULT``),
4. loads every DAG in ``example_dags/`` and runs each once with ``dag.test()``, except the
   event-driven one (``partneros_on_integration_sync``, scheduled on a PartnerOS asset): that one runs
   in a real deployment (``airflow standalone``: scheduler, triggerer, dag-processor, api-server,
   started at the beginning so it boots while the other DAGs run). Its watcher polls the stand-in in the
   triggerer; once it has taken its baseline, the stand-in's Salesforce integration finishes a new sync,
   and the run that sync causes is waited for and shown,
5. prints a table (DAG, final state, every task's state) and the stand-in's sign-ins, sign-outs
   and 429s: all tasks share the host's one session (``[partneros] session_dir``, a throwaway store
   here), which lingers ``DEMO_LINGER`` seconds after the last task and is then signed out by the
   host's steward, and the total time.

A Fernet key is generated for the run (``[core] fernet_key``), so connections and variables would be
stored encrypted, as in any real deployment, and Airflow has no "empty cryptography key" to warn about.
Exits non-zero when a DAG fails to import, a run does not succeed, or there are no DAGs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EVENT_DAG_ID = "partneros_on_integration_sync"
"""Scheduled on ``integration_synced_asset``: only a triggerer can start it, so it runs in a deployment."""
EVENT_CONNECTION = "conn_salesforce_demo"
EVENT_POKE_INTERVAL = 2
"""The demo's watcher polls every 2 s (the example says 120 s, a sensible production value)."""
DEMO_LINGER = 3.0
"""The demo's ``[partneros] session_linger`` (deployments default to 60 s), so it can show the
steward's sign-out before it stops the stand-in."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dags-folder", type=Path, default=REPO / "example_dags", help="folder of DAG files to run"
    )
    parser.add_argument("--dag", action="append", default=[], help="run only this dag id (repeatable)")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME")
    parser.add_argument(
        "--no-deployment",
        action="store_true",
        help=f"skip the real deployment: run {EVENT_DAG_ID} with dag.test() too (a manual run, no event)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show Airflow's INFO logs (task logs) instead of warnings only"
    )
    return parser.parse_args(argv)


def _dag_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.py") if not p.name.startswith(("_", ".")))


def _table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table; a cell may hold several lines (the tasks of one run)."""
    split = [[cell.split("\n") for cell in row] for row in rows]
    widths = [
        max([len(header[i])] + [len(line) for row in split for line in row[i]]) for i in range(len(header))
    ]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for row in split:
        for n in range(max(len(cell) for cell in row)):
            cells = [cell[n] if n < len(cell) else "" for cell in row]
            out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(out)


def _task_lines(tis: list[Any]) -> str:
    """One line per task; a mapped task's instances are summed up on its line."""
    by_task: dict[str, list[Any]] = {}
    for ti in sorted(tis, key=lambda ti: (ti.task_id, ti.map_index)):
        by_task.setdefault(ti.task_id, []).append(ti)
    lines = []
    for task_id, group in by_task.items():
        if len(group) == 1 and group[0].map_index < 0:
            lines.append(f"{task_id}: {_state(group[0].state)}")
            continue
        counts: dict[str, int] = {}
        for ti in group:
            counts[_state(ti.state)] = counts.get(_state(ti.state), 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines.append(f"{task_id} [{len(group)} mapped]: {summary}")
    return "\n".join(lines) or "(no task instances)"


def _state(value: Any) -> str:
    return str(getattr(value, "value", value) or "none")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    dags_folder: Path = args.dags_folder.resolve()
    files = _dag_files(dags_folder)
    if not files:
        print(f"no example DAGs found in {dags_folder}", file=sys.stderr)
        return 1

    total_start = time.monotonic()
    # Noise from Airflow's own in-process execution API client, not from the DAGs.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient` is deprecated")
    home = Path(tempfile.mkdtemp(prefix="partneros-demo-airflow-home-"))
    # Airflow reads its configuration when first imported: set everything before that.
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO" if args.verbose else "WARNING",
            "AIRFLOW__PARTNEROS__SESSION_DIR": str(home / "partneros-sessions"),
            "AIRFLOW__PARTNEROS__SESSION_LINGER": str(DEMO_LINGER),
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        }
    )

    # The stand-in never imports Airflow; it only needs the provider package on sys.path.
    from airflow_provider_partneros.testing import PartnerOSStandIn

    srv = PartnerOSStandIn()
    srv.seed_demo()
    srv.start()
    os.environ["AIRFLOW_CONN_PARTNEROS_DEFAULT"] = srv.connection_json()
    print(f"PartnerOS stand-in at {srv.base_url}; AIRFLOW_HOME={home}")

    deployment = None if args.no_deployment else _start_deployment(dags_folder, srv, home, args.keep_home)
    try:
        return _run(args, dags_folder, files, srv, deployment)
    finally:
        if deployment is not None:
            deployment.stop()
        srv.stop()
        if args.keep_home:
            print(f"kept AIRFLOW_HOME={home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
        print(f"total time: {time.monotonic() - total_start:.1f}s")


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _start_deployment(dags_folder: Path, srv: Any, home: Path, keep: bool) -> Any:
    """``airflow standalone`` with only the event-driven DAG, started now so it boots meanwhile."""
    source_file = dags_folder / f"{EVENT_DAG_ID}.py"
    if not source_file.exists():
        return None
    sys.path.insert(0, str(REPO / "tests"))  # the project's deployment harness (tests/deployment_harness.py)
    from deployment_harness import AirflowDeployment

    source = source_file.read_text()
    if source.count("poke_interval=120") != 1:
        raise SystemExit(f"{source_file} no longer says poke_interval=120: update scripts/run_demo.py")
    env = {
        "AIRFLOW_CONN_PARTNEROS_DEFAULT": srv.connection_json(),
        "AIRFLOW__CORE__FERNET_KEY": os.environ["AIRFLOW__CORE__FERNET_KEY"],
        "AIRFLOW__PARTNEROS__SESSION_DIR": os.environ["AIRFLOW__PARTNEROS__SESSION_DIR"],
        "AIRFLOW__PARTNEROS__SESSION_LINGER": str(DEMO_LINGER),
    }
    deployment = AirflowDeployment(
        dags={source_file.name: source.replace("poke_interval=120", f"poke_interval={EVENT_POKE_INTERVAL}")},
        env=env,
        home=home / "deployment",
        keep_home=keep,
    )
    print(
        f"starting airflow standalone for {EVENT_DAG_ID} at {deployment.base_url} (boots in the background)"
    )
    return deployment.start()


def _run_event_driven(deployment: Any, srv: Any) -> list[str]:
    """Wait for the watcher's baseline, make the integration sync, and return the table row of the run
    that sync caused (run through scheduler, triggerer and a LocalExecutor worker)."""
    from datetime import datetime, timezone

    started = time.monotonic()
    ins, outs, limited = srv.sign_ins, srv.sign_outs, srv.sign_in_rate_limited
    print(f"\n=== {EVENT_DAG_ID}: waiting for airflow standalone ===", flush=True)
    healthy = deployment.wait_healthy(timeout=120)
    deployment.wait_for_dag(EVENT_DAG_ID, timeout=60)
    parsed = time.monotonic() - (deployment.started_at or started)
    status_key = "GET /api/integrations/{id}/status"
    polls = srv.requests[status_key]
    _wait("the watcher's first polls (its baseline)", lambda: srv.requests[status_key] >= polls + 2, 60)
    print(
        f"deployment healthy {healthy:.0f} s after its start, DAG parsed at {parsed:.0f} s, watcher "
        f"polling at {time.monotonic() - (deployment.started_at or started):.0f} s"
    )
    synced = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    srv.set_integration(EVENT_CONNECTION, status="active", last_sync_at=synced)
    print(f"the stand-in's {EVENT_CONNECTION} finished a sync at {synced}; waiting for the run it causes")

    def finished() -> list[dict[str, Any]]:
        runs = deployment.api("GET", f"/dags/{EVENT_DAG_ID}/dagRuns", params={"limit": 10})["dag_runs"]
        return [r for r in runs if r["state"] in ("success", "failed")]

    _wait("the run caused by the sync", lambda: bool(finished()), 90)
    (run,) = finished()
    tis = deployment.task_instances(EVENT_DAG_ID, run["dag_run_id"])
    tasks = "\n".join(f"{task}: {ti['state']}" for task, ti in sorted(tis.items()))
    lines = deployment.api(
        "GET",
        f"/dags/{EVENT_DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/what_synced/xcomEntries/return_value",
    ).get("value")
    print(f"run {run['dag_run_id']} ({run['run_type']}): {lines}")
    return [
        f"{EVENT_DAG_ID}\n({run['run_type']}, real triggerer)",
        str(run["state"]),
        tasks,
        str(srv.sign_ins - ins),
        str(srv.sign_outs - outs),
        str(srv.sign_in_rate_limited - limited),
        f"{time.monotonic() - started:.1f}s",
    ]


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.5)


def _run(args: argparse.Namespace, dags_folder: Path, files: list[Path], srv: Any, deployment: Any) -> int:
    t0 = time.monotonic()
    from airflow.utils.db import resetdb

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # older layouts
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    resetdb()
    print(f"metadata DB ready in {time.monotonic() - t0:.1f}s")

    bag = DagBag(dag_folder=str(dags_folder))  # AIRFLOW__CORE__LOAD_EXAMPLES=False keeps examples out
    failed = False
    if bag.import_errors:
        failed = True
        for path, err in sorted(bag.import_errors.items()):
            print(f"\nIMPORT ERROR in {path}:\n{err}", file=sys.stderr)
    dag_ids = sorted(bag.dags)
    if args.dag:
        unknown = sorted(set(args.dag) - set(dag_ids))
        if unknown:
            print(f"unknown dag id(s): {', '.join(unknown)}; found: {', '.join(dag_ids)}", file=sys.stderr)
            return 1
        dag_ids = [d for d in dag_ids if d in args.dag]
    if not dag_ids:
        print(
            f"no example DAGs found in {dags_folder} ({len(files)} file(s) defined no DAG)", file=sys.stderr
        )
        return 1

    rows: list[list[str]] = []
    for dag_id in dag_ids:
        if dag_id == EVENT_DAG_ID and deployment is not None:
            continue  # runs in the deployment, after the others
        dag = bag.dags[dag_id]
        ins, outs, limited = srv.sign_ins, srv.sign_outs, srv.sign_in_rate_limited
        started = time.monotonic()
        print(f"\n=== running {dag_id} ===", flush=True)
        try:
            run = dag.test()
        except Exception as exc:  # a crash of dag.test() itself, not a failed task
            failed = True
            rows.append([dag_id, f"error: {type(exc).__name__}: {exc}"[:80], "", "", "", "", ""])
            continue
        state = _state(run.state)
        if state != "success":
            failed = True
        tasks = _task_lines(list(run.get_task_instances()))
        rows.append(
            [
                dag_id,
                state,
                tasks,
                str(srv.sign_ins - ins),
                str(srv.sign_outs - outs),
                str(srv.sign_in_rate_limited - limited),
                f"{time.monotonic() - started:.1f}s",
            ]
        )

    if deployment is not None and EVENT_DAG_ID in dag_ids:
        try:
            row = _run_event_driven(deployment, srv)
        except Exception as exc:
            failed = True
            row = [EVENT_DAG_ID, f"error: {type(exc).__name__}: {exc}"[:200], "", "", "", "", ""]
            print(deployment.output(), file=sys.stderr)
        failed = failed or row[1] != "success"
        rows.append(row)
        # Its triggerer's watcher holds the host's session while it runs: stop it, so the session's
        # linger and sign-out below happen as on a host whose last PartnerOS user is gone.
        deployment.stop()

    print()
    print(_table(rows, ["dag", "state", "tasks", "sign-ins", "sign-outs", "429s", "time"]))
    lingering = srv.active_sessions
    waited = time.monotonic()
    while srv.active_sessions and time.monotonic() - waited < DEMO_LINGER + 10:
        time.sleep(0.2)
    print(
        f"\nstand-in totals: {srv.sign_ins} sign-ins, {srv.sign_in_rate_limited} answered 429, "
        f"{srv.sign_outs} sign-outs; {lingering} shared session(s) lingering after the last task, "
        f"{srv.active_sessions} still active {time.monotonic() - waited:.1f}s later (the host's steward "
        f"signs an unused session out after session_linger={DEMO_LINGER:g}s)"
    )
    if failed:
        print("\nDEMO FAILED: see the rows above that are not 'success'.", file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} example DAG run(s) succeeded in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
