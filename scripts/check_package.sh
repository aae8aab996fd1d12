#!/usr/bin/env bash
# Packaging check: build sdist + wheel, `twine check` them, look inside the wheel, then install the
# wheel (not editable) with apache-airflow==$AIRFLOW_VERSION into a clean temporary venv and ask
# Airflow's own CLI whether the provider and its `partneros` connection type registered.
#
# Uses the dev venv (.venv: build, twine, uv); `make package-check` makes sure it exists.
set -euo pipefail
cd "$(dirname "$0")/.."

AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
DIST_NAME=airflow-provider-partneros
CONN_TYPE=partneros
BIN=$PWD/.venv/bin
[ -x "$BIN/python" ] || { echo "error: no dev venv at .venv; run 'make venv' first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/partneros-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "[package-check] $*"; }

step "building sdist + wheel into $work/dist"
# --installer uv: the isolated build env is made by uv (from its cache) instead of pip.
PATH="$BIN:$PATH" "$BIN/python" -m build --installer uv --outdir "$work/dist" . >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  exit 1
}
ls -1 "$work/dist"

step "twine check --strict"
"$BIN/twine" --no-color check --strict "$work/dist"/*

wheel=$(ls "$work/dist"/*.whl)
step "inspecting $(basename "$wheel")"
"$BIN/python" - "$wheel" "$work/dist"/*.tar.gz <<'PY'
import sys
import tarfile
import zipfile

wheel, sdist = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
errors = []
if "airflow_provider_partneros/py.typed" not in names:
    errors.append("py.typed is not in the wheel")
for required in ("airflow_provider_partneros/__init__.py", "airflow_provider_partneros/get_provider_info.py"):
    if required not in names:
        errors.append(f"{required} is not in the wheel")
stray = sorted({n.split("/")[0] for n in names} - {"airflow_provider_partneros"} - {
    n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")
})
if stray:
    errors.append(f"unexpected top-level entries in the wheel: {stray}")
ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
entry_points = zipfile.ZipFile(wheel).read(ep).decode()
for needed in ("[apache_airflow_provider]", "get_provider_info:get_provider_info", "[pytest11]"):
    if needed not in entry_points:
        errors.append(f"entry_points.txt lacks {needed!r}")
sdist_names = tarfile.open(sdist).getnames()
if not any(n.endswith("/airflow_provider_partneros/py.typed") for n in sdist_names):
    errors.append("py.typed is not in the sdist")
if errors:
    sys.exit("error: " + "; ".join(errors))
print(f"  wheel: {len(names)} files, py.typed and entry points present; sdist: {len(sdist_names)} entries")
PY

step "installing the wheel + apache-airflow==$AIRFLOW_VERSION into a clean venv (uv, cached)"
"$BIN/uv" venv --quiet --python "$BIN/python" "$work/venv"
UV_COMPILE_BYTECODE=1 "$BIN/uv" pip install --quiet --python "$work/venv/bin/python" \
  "$wheel" "apache-airflow==$AIRFLOW_VERSION"

export AIRFLOW_HOME="$work/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
unset AIRFLOW__CORE__DAGS_FOLDER AIRFLOW_CONN_PARTNEROS_DEFAULT

step "airflow providers list"
"$work/venv/bin/airflow" providers list -o json >"$work/providers.json" 2>"$work/providers.err" || {
  cat "$work/providers.err" >&2
  exit 1
}
step "airflow providers hooks"
"$work/venv/bin/airflow" providers hooks -o json >"$work/hooks.json" 2>"$work/hooks.err" || {
  cat "$work/hooks.err" >&2
  exit 1
}

"$work/venv/bin/python" - "$work/providers.json" "$work/hooks.json" "$DIST_NAME" "$CONN_TYPE" <<'PY'
import json
import sys

providers_file, hooks_file, dist_name, conn_type = sys.argv[1:]


def load(path: str) -> list[dict]:
    text = open(path).read()
    start = text.find("[")  # tolerate log lines before the JSON document
    if start < 0:
        sys.exit(f"error: no JSON list in the output of the command ({path}):\n{text[:2000]}")
    return json.loads(text[start:])


providers = {p["package_name"]: p for p in load(providers_file)}
if dist_name not in providers:
    sys.exit(f"error: 'airflow providers list' does not list {dist_name}; it lists {sorted(providers)}")
print(f"  providers list: {dist_name} {providers[dist_name]['version']}")

hooks = {h["connection_type"]: h for h in load(hooks_file)}
hook = hooks.get(conn_type)
if hook is None:
    sys.exit(f"error: 'airflow providers hooks' has no '{conn_type}' connection type; it has {sorted(hooks)}")
if hook.get("package_name") != dist_name or not hook.get("class"):
    sys.exit(f"error: '{conn_type}' hook is not importable or not ours: {hook}")
print(f"  providers hooks: {conn_type} -> {hook['class']} ({hook['hook_name']})")
PY
step "ok"
