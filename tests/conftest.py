"""Shared test set-up: a throwaway Airflow home, and running DAGs in real Airflow with ``dag.test()``.

Airflow reads its configuration at import time, so the environment is set here, before any test
module imports airflow. The stand-in server fixtures (``partneros_server``, ``partneros_connection``)
come from the provider's own pytest plugin, the same one users load.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

_THROWAWAY: list[str] = []
"""Directories this run made for itself, removed when it ends."""
atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in _THROWAWAY])

if not os.environ.get("AIRFLOW_HOME"):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="partneros-tests-airflow-")
    _THROWAWAY.append(os.environ["AIRFLOW_HOME"])
_DAGS_FOLDER = Path(os.environ["AIRFLOW_HOME"]) / "dags"
_DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
# An empty DAGs folder: tests register their own DAG objects (see `run_dag`), so dag.test() has no
# unrelated files to parse on every run.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__SQL_ALCHEMY_CONN", f"sqlite:///{os.environ['AIRFLOW_HOME']}/airflow.db")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", os.environ["AIRFLOW__CORE__SQL_ALCHEMY_CONN"])
# A session store of this run's own (tests that need one per test use `partneros_session_dir`), so the
# suite never shares PartnerOS sessions with another run or a deployment on this machine.
os.environ["AIRFLOW__PARTNEROS__SESSION_DIR"] = tempfile.mkdtemp(prefix="partneros-tests-sessions-")
_THROWAWAY.append(os.environ["AIRFLOW__PARTNEROS__SESSION_DIR"])
os.environ["AIRFLOW__PARTNEROS__SESSION_LINGER"] = "0"

if TYPE_CHECKING:
    from airflow.sdk import DAG
    from redis_helpers import RedisServer

    from airflow_provider_partneros.testing import PartnerOSStandIn

# tests/scale needs the scale-out venv (Celery, PostgreSQL and Redis clients): `make scale-test` runs it
# there. Elsewhere (the dev venv, the matrix legs) it is not collected at all.
collect_ignore: list[str] = [] if importlib.util.find_spec("celery") else ["scale"]


def _has_distribution(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


# tests/lineage needs the OpenLineage provider, which only the lineage venv has (`make lineage-test`).
if not _has_distribution("apache-airflow-providers-openlineage"):
    collect_ignore.append("lineage")

pytest_plugins: list[str] = []
try:  # the plugin is registered as a pytest11 entry point once the package is installed
    from importlib.metadata import entry_points

    if not any(ep.name == "partneros" for ep in entry_points(group="pytest11")):
        pytest_plugins.append("airflow_provider_partneros.testing.pytest_plugin")
except Exception:  # pragma: no cover
    pytest_plugins.append("airflow_provider_partneros.testing.pytest_plugin")


def _reuse_in_process_api_server() -> None:
    """Build dag.test()'s in-process execution API once, as Airflow 3.3 does.

    Task SDK 1.2 (Airflow 3.2) rebuilds the FastAPI app for every task instance (5-7 s each on
    these machines); 3.3 caches it with ``lru_cache``. Caching it here keeps the 3.2 matrix leg
    within CI's time without changing what runs.
    """
    from airflow.sdk.execution_time import supervisor

    factory = getattr(supervisor, "in_process_api_server", None)
    if factory is not None and not hasattr(factory, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(factory)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB, made once per test session (about 3 s)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db
    from airflow.utils.session import create_session

    _reuse_in_process_api_server()
    db.resetdb()
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)


@dataclass
class TaskResult:
    state: str | None
    try_number: int
    xcom: Any = None


@dataclass
class DagResult:
    """What a user would look at in the UI after a run: run state, task states, tries and XComs."""

    state: str
    tasks: dict[str, TaskResult] = field(default_factory=dict)

    def __getitem__(self, task_id: str) -> TaskResult:
        return self.tasks[task_id]


def _register(dag: DAG) -> None:
    """Write the DAG to the metadata DB as the DAG processor would, so dag.test() can run it."""
    from airflow.dag_processing.dagbag import sync_bag_to_db

    class _OneDagBag:
        dags = {dag.dag_id: dag}
        import_errors: dict[str, str] = {}
        bundle_path = None
        dag_warnings: set[Any] = set()
        file_last_changed: dict[str, Any] = {}

    sync_bag_to_db(_OneDagBag(), "dags-folder", None)  # type: ignore[arg-type]


def _xcom(run_id: str, dag_id: str, task_id: str, map_index: int) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run_id, key="return_value", task_ids=task_id, dag_ids=dag_id, map_indexes=map_index
            )
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., DagResult]:
    """Run a DAG object with ``dag.test()`` and return its outcome; mapped tasks are keyed ``id[i]``."""

    def _run(dag: DAG, **kwargs: Any) -> DagResult:
        _register(dag)
        run = dag.test(**kwargs)
        result = DagResult(state=str(run.state))
        for ti in run.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            result.tasks[key] = TaskResult(
                state=str(ti.state) if ti.state else None,
                try_number=ti.try_number,
                xcom=_xcom(run.run_id, dag.dag_id, ti.task_id, ti.map_index),
            )
        return result

    return _run


@pytest.fixture
def standin(partneros_server: PartnerOSStandIn, partneros_session_dir: Path) -> PartnerOSStandIn:
    """Short alias: a fresh, demo-seeded stand-in for this test, with a session store of its own."""
    return partneros_server


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real ``redis-server`` of this test's own (tests/redis_helpers.py), stopped by its pid after."""
    from redis_helpers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
