"""OpenLineage set-up for tests/lineage: every event the provider emits goes to one JSON-lines file.

The transport is configured through the environment before the OpenLineage provider first reads its
configuration (it caches it). Collected only where that provider is installed (``make lineage-test``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

EVENTS_FILE = Path(tempfile.mkdtemp(prefix="partneros-openlineage-")) / "events.jsonl"
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
    {"type": "file", "log_file_path": str(EVENTS_FILE), "append": True}
)
os.environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "partneros-tests"
os.environ.pop("AIRFLOW__OPENLINEAGE__DISABLED", None)


@pytest.fixture
def events_file() -> Path:
    """The events file, emptied for this test."""
    EVENTS_FILE.write_text("")
    return EVENTS_FILE
