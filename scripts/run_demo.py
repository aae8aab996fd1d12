"""Run every example DAG end to end in real Airflow against the built-in PartnerOS stand-in.

``make demo`` runs this with the dev venv. In one process it:

1. starts the stand-in PartnerOS server seeded with the demo data,
2. makes a throwaway AIRFLOW_HOME (SQLite metadata DB, created in-process),
3. points the ``partneros_default`` connection at the stand-in (``AIRFLOW_CONN_PARTNEROS_DEFAULT``),
4. loads every DAG in ``example_dags/`` and runs each once with ``dag.test()``,
5. prints a table (DAG, final state, every task's state) and the stand-in's sign-ins, sign-outs
   and 429s: all tasks share the host's one session (``[partneros] session_dir``, a throwaway store
   here), which lingers ``DEMO_LINGER`` seconds after the last task and is then signed out by the
   host's steward,

and exits non-zero when a DAG fails to import, a run does not succeed, or there are no DAGs.
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
        }
    )

    # The stand-in never imports Airflow; it only needs the provider package on sys.path.
    from airflow_provider_partneros.testing import PartnerOSStandIn

    srv = PartnerOSStandIn()
    srv.seed_demo()
    srv.start()
    os.environ["AIRFLOW_CONN_PARTNEROS_DEFAULT"] = srv.connection_json()
    print(f"PartnerOS stand-in at {srv.base_url}; AIRFLOW_HOME={home}")

    try:
        return _run(args, dags_folder, files, srv)
    finally:
        srv.stop()
        if args.keep_home:
            print(f"kept AIRFLOW_HOME={home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _run(args: argparse.Namespace, dags_folder: Path, files: list[Path], srv: Any) -> int:
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
