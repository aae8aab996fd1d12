"""Packaging and registration: what Airflow sees of this provider once it is installed.

Fast and in-process. The build/install-from-wheel side (sdist, wheel, twine, a clean venv and
`airflow providers list/hooks`) is ``make package-check`` (scripts/check_package.sh).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any

import airflow  # noqa: F401  # first: see test_get_provider_info_imports_in_a_fresh_interpreter
import jsonschema
import pytest

from airflow_provider_partneros.get_provider_info import CONN_TYPE, get_provider_info

DIST_NAME = "airflow-provider-partneros"
PACKAGE = "airflow_provider_partneros"
HOOK_CLASS = "airflow_provider_partneros.hooks.partneros.PartnerOSHook"
RELABELED = {"host": "Base URL", "login": "Email"}
EXTRAS = {"organization_id", "timeout", "verify", "max_retries", "retry_backoff"}


def _normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _airflow_schema(file_name: str) -> dict[str, Any]:
    """A JSON schema shipped inside the installed ``airflow`` package, read without importing airflow."""
    for dist_name in ("apache-airflow-core", "apache-airflow"):
        try:
            path = metadata.distribution(dist_name).locate_file(f"airflow/{file_name}")
        except metadata.PackageNotFoundError:
            continue
        if path.is_file():
            schema: dict[str, Any] = json.loads(path.read_text())
            return schema
    raise AssertionError(f"airflow/{file_name} not found in the installed Airflow")


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def _our_entry_point(group: str) -> metadata.EntryPoint:
    eps = [ep for ep in metadata.entry_points(group=group) if ep.value.startswith(PACKAGE)]
    assert len(eps) == 1, f"expected one {group!r} entry point of {PACKAGE}, found {eps}"
    return eps[0]


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return get_provider_info()


@pytest.fixture(scope="module")
def conn_type_info(info: dict[str, Any]) -> dict[str, Any]:
    matches = [c for c in info["connection-types"] if c["connection-type"] == CONN_TYPE]
    assert len(matches) == 1
    return matches[0]


# --- provider info against Airflow's own schemas -----------------------------------------------------


def test_provider_info_validates_against_airflow_provider_info_schema(info: dict[str, Any]) -> None:
    _validate(info, _airflow_schema("provider_info.schema.json"))


def test_connection_types_validate_against_provider_yaml_schema(info: dict[str, Any]) -> None:
    # provider_info.schema.json does not describe conn-fields / ui-field-behaviour; the provider.yaml
    # schema does (properties.connection-types), and the UI relies on that shape.
    yaml_schema = _airflow_schema("provider.yaml.schema.json")
    connection_types_schema = {
        "$schema": yaml_schema.get("$schema", "http://json-schema.org/draft-07/schema#"),
        "definitions": yaml_schema.get("definitions", {}),
        **yaml_schema["properties"]["connection-types"],
    }
    _validate(info["connection-types"], connection_types_schema)


def test_field_behaviour_validates_against_providers_manager_schema(conn_type_info: dict[str, Any]) -> None:
    # ProvidersManager converts ui-field-behaviour to snake_case and validates it against this schema;
    # on failure it only logs a warning and the form silently loses the relabelling.
    behaviour = conn_type_info["ui-field-behaviour"]
    converted = {
        "hidden_fields": behaviour.get("hidden-fields", []),
        "relabeling": behaviour.get("relabeling", {}),
        "placeholders": behaviour.get("placeholders", {}),
    }
    _validate(converted, _airflow_schema("customized_form_field_behaviours.schema.json"))


def test_conn_field_defaults_satisfy_their_own_schema(conn_type_info: dict[str, Any]) -> None:
    fields = conn_type_info["conn-fields"]
    assert set(fields) >= EXTRAS
    for name, field in fields.items():
        if "default" in field["schema"]:
            jsonschema.validate(field["schema"]["default"], field["schema"])
        assert field["label"].strip(), f"conn-field {name} has an empty label"


def test_every_referenced_module_and_class_imports(info: dict[str, Any]) -> None:
    modules = {
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for e in info.get(kind, [])
        for m in e["python-modules"]
    }
    for module in sorted(modules):
        importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, cls = conn["hook-class-name"].rpartition(".")
        hook_cls = getattr(importlib.import_module(module), cls)
        assert getattr(hook_cls, "conn_type", None) == conn["connection-type"]


def test_get_provider_info_imports_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # Airflow loads the entry point while it initializes its own configuration, so the module must
    # import cleanly when nothing (airflow included) has been imported yet, e.g. as the first import
    # of a script or of a test module. A cycle through ``airflow`` shows up only then.
    code = f"import {PACKAGE}.get_provider_info as m; m.get_provider_info()"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


# --- distribution metadata and entry points ------------------------------------------------------


def test_package_name_is_the_normalized_distribution_name(info: dict[str, Any]) -> None:
    ep = _our_entry_point("apache_airflow_provider")
    assert ep.dist is not None
    assert info["package-name"] == _normalize(ep.dist.name) == DIST_NAME
    assert info["versions"][0] == metadata.version(DIST_NAME)


def test_provider_entry_point_resolves_to_get_provider_info() -> None:
    ep = _our_entry_point("apache_airflow_provider")
    assert ep.value == f"{PACKAGE}.get_provider_info:get_provider_info"
    assert ep.load() is get_provider_info


def test_pytest11_entry_point_exists_and_is_active(pytestconfig: pytest.Config) -> None:
    ep = _our_entry_point("pytest11")
    assert ep.name == "partneros"
    plugin = ep.load()
    assert hasattr(plugin, "partneros_server")
    assert hasattr(plugin, "partneros_connection")
    assert pytestconfig.pluginmanager.has_plugin("partneros")


def test_py_typed_ships() -> None:
    assert files(PACKAGE).joinpath("py.typed").is_file()
    dist_files = metadata.distribution(DIST_NAME).files or []
    package_files = {str(f) for f in dist_files if str(f).startswith(f"{PACKAGE}/")}
    if package_files:  # a regular (wheel) install lists its files in RECORD
        assert f"{PACKAGE}/py.typed" in package_files
    elif sys.version_info >= (3, 11):  # an editable install does not: check the build config instead
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
        assert "py.typed" in package_data[PACKAGE]


# --- what Airflow's ProvidersManager and the connection UI see ------------------------------------


@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_providers_manager_registers_the_provider(providers_manager: Any) -> None:
    assert DIST_NAME in providers_manager.providers
    provider = providers_manager.providers[DIST_NAME]
    assert provider.version == metadata.version(DIST_NAME)


def test_task_runtime_resolves_the_hook_for_the_connection_type() -> None:
    # Since 3.2 hook lookup (BaseHook.get_hook, `airflow providers hooks`) lives in the task SDK;
    # ProvidersManager.hooks is a deprecated alias of this.
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook_info = ProvidersManagerTaskRuntime().hooks[CONN_TYPE]
    assert hook_info is not None, "the PartnerOS hook could not be imported by the providers manager"
    assert hook_info.hook_class_name == HOOK_CLASS
    assert hook_info.package_name == DIST_NAME
    assert hook_info.hook_name == "PartnerOS"
    assert hook_info.connection_type == CONN_TYPE
    assert hook_info.connection_id_attribute_name == "partneros_conn_id"


def test_connection_form_relabels_standard_fields(providers_manager: Any) -> None:
    behaviour = providers_manager.field_behaviours.get(CONN_TYPE)
    assert behaviour is not None, "ui-field-behaviour was rejected by ProvidersManager (see its warnings)"
    assert behaviour["relabeling"] == RELABELED
    assert {"port", "schema", "extra"} <= set(behaviour["hidden_fields"])
    assert not {"host", "login", "password"} & set(behaviour["hidden_fields"])
    assert behaviour["placeholders"]["host"].startswith("https://")


def test_connection_form_has_the_extra_fields(providers_manager: Any) -> None:
    widgets = {
        w.field_name: w
        for key, w in providers_manager.connection_form_widgets.items()
        if key.startswith(f"extra__{CONN_TYPE}__")
    }
    assert set(widgets) >= EXTRAS
    labels = {name: w.field["schema"]["title"] for name, w in widgets.items()}
    assert labels["organization_id"] == "Organization ID"
    assert labels["timeout"] == "Timeout (seconds)"
    assert labels["verify"] == "Verify TLS"
    assert labels["max_retries"] == "Max retries"
    assert labels["retry_backoff"] == "Retry backoff (seconds)"
    assert all(w.hook_class_name == HOOK_CLASS and w.package_name == DIST_NAME for w in widgets.values())
    assert not any(w.is_sensitive for w in widgets.values())


def test_ui_hook_metadata_shows_relabelled_form() -> None:
    """What the UI's connection form endpoint serves (``/ui/connections/hook_meta``)."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    from airflow_provider_partneros._connection.settings import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT

    metas = {m.connection_type: m for m in HookMetaService.hook_meta_data()}
    meta = metas.get(CONN_TYPE)
    assert meta is not None, f"{CONN_TYPE} is not in the UI's connection types: {sorted(metas)}"
    assert meta.hook_name == "PartnerOS"
    assert meta.hook_class_name == HOOK_CLASS
    std = meta.standard_fields
    assert std is not None
    shown = {name: getattr(std, name) for name in ("host", "login", "password", "port", "url_schema")}
    assert {n: (f.title if f else None) for n, f in shown.items() if n in RELABELED} == RELABELED
    assert [n for n in ("host", "login", "password") if shown[n] is not None and shown[n].hidden] == []
    assert [n for n in ("port", "url_schema") if shown[n] is not None and shown[n].hidden] == [
        "port",
        "url_schema",
    ]
    extra = meta.extra_fields or {}
    assert set(extra) >= EXTRAS
    assert extra["timeout"]["value"] == DEFAULT_TIMEOUT
    assert extra["max_retries"]["value"] == DEFAULT_MAX_RETRIES
    assert extra["organization_id"]["schema"]["title"] == "Organization ID"
