"""One scale-out environment (tests/scale/harness.py) for the whole ``tests/scale`` run.

Starting it takes about 40 s (PostgreSQL, Redis, migrations, seven Airflow processes), so the
scenarios share it; a scenario that kills a component leaves the restart to the next one that needs
it (``ScaleEnvironment.ensure_running``). Run with ``make scale-test`` (its own venv: Celery,
PostgreSQL driver, Redis client).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import ScaleEnvironment


@pytest.fixture(scope="session")
def scale_env() -> Iterator[ScaleEnvironment]:
    with ScaleEnvironment() as env:
        yield env
