#!/usr/bin/env bash
# Packaging check: install the provider as README.md's Install section says, into a clean
# venv that has apache-airflow==$AIRFLOW_VERSION, and ask Airflow's own CLI whether the provider and
# its `partneros` connection type registered; `twine check` and look inside the wheel and sdist the
# README's build command made.
#
# The README's commands are the code blocks marked <!-- install:clone --> and <!-- install:wheel -->
# (scripts/doc_blocks.py extracts them; tests/test_docs.py fails if a marker goes missing). They run
# verbatim, in a fresh copy of the source tree (what a clone holds), so a README edit that breaks
# them fails this check. The only substitutions are the shell functions `pip` and `python` below.
#
# Uses the dev venv (.venv: uv, twine); `make package-check` makes sure it exists.
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

step "copying the source tree (tracked and untracked, not ignored files) to $work/src"
mkdir "$work/src"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || {
  echo "error: not a git checkout: the check copies the files git knows, as a clone would hold" >&2
  exit 1
}
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$work/src"

venv=$work/venv
minor=$(echo "$AIRFLOW_VERSION" | cut -d. -f1,2)
constraints=()
[ -f "constraints/airflow-$minor.txt" ] && constraints=(-c "constraints/airflow-$minor.txt")
step "a clean venv with apache-airflow==$AIRFLOW_VERSION${constraints[*]:+ ${constraints[*]}} (uv, cached)"
"$BIN/uv" venv --quiet --python "$BIN/python" "$venv"
UV_COMPILE_BYTECODE=1 "$BIN/uv" pip install --quiet --python "$venv/bin/python" \
  "apache-airflow==$AIRFLOW_VERSION" "${constraints[@]}"

# The substitutions, all of them: what a user types -> what runs here.
#   pip ARGS...        -> uv pip ARGS... --python <the clean venv>: uv installs from its warm cache
#                         (pip would download Airflow's dependencies again: minutes, and network)
#   python ARGS...     -> <the clean venv>/bin/python ARGS...
#   python -m build .. -> the same plus `--installer uv` (its isolated build env, for the same reason)
# Everything else in the README's blocks runs as written, with `bash -euo pipefail`, in $work/src.
pip() { UV_COMPILE_BYTECODE=1 "$BIN/uv" pip "$1" --quiet --python "$venv/bin/python" "${@:2}"; }
python() {
  if [ "${1:-}" = -m ] && [ "${2:-}" = build ]; then
    PATH="$BIN:$PATH" "$venv/bin/python" -m build --installer uv "${@:3}"
  else
    "$venv/bin/python" "$@"
  fi
}
export -f pip python
export BIN venv

run_readme() {
  local block
  block=$("$BIN/python" scripts/doc_blocks.py README.md "$1")
  step "README <!-- $1 -->, in $work/src:"
  sed 's/^/    $ /' <<<"$block"
  (cd "$work/src" && bash -euo pipefail -c "$block") >"$work/$1.log" 2>&1 || {
    cat "$work/$1.log" >&2
    echo "error: README.md's <!-- $1 --> commands failed (output above)" >&2
    exit 1
  }
}

export AIRFLOW_HOME="$work/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
unset AIRFLOW__CORE__DAGS_FOLDER AIRFLOW_CONN_PARTNEROS_DEFAULT

# Run from $work, so nothing can import the package from a source tree by accident.
check_registered() {
  cd "$work"
  local where
  where=$("$venv/bin/python" -c 'import airflow_provider_partneros as m; print(m.__file__)')
  case $where in
  "$venv"/*) echo "  imported from the clean venv: ${where#"$venv"/}" ;;
  *) echo "error: airflow_provider_partneros imports from $where, not from the clean venv" >&2; exit 1 ;;
  esac
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
  cd - >/dev/null
}

run_readme install:clone
check_registered
"$BIN/uv" pip uninstall --quiet --python "$venv/bin/python" "$DIST_NAME"

run_readme install:wheel
ls -1 "$work/src/dist"
step "twine check --strict"
"$BIN/twine" --no-color check --strict "$work/src/dist"/*
wheel=$(ls "$work/src/dist"/*.whl)
step "inspecting $(basename "$wheel")"
"$BIN/python" - "$wheel" "$work/src/dist"/*.tar.gz <<'PY'
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
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
metadata = zipfile.ZipFile(wheel).read(meta).decode()
if "Provides-Extra: redis" not in metadata or not any(
    line.startswith("Requires-Dist: redis") and 'extra == "redis"' in line for line in metadata.splitlines()
):
    errors.append("the wheel lacks the [redis] extra (the Redis session store's redis-py)")
sdist_names = tarfile.open(sdist).getnames()
if not any(n.endswith("/airflow_provider_partneros/py.typed") for n in sdist_names):
    errors.append("py.typed is not in the sdist")
if errors:
    sys.exit("error: " + "; ".join(errors))
print(f"  wheel: {len(names)} files, py.typed, entry points and the [redis] extra present; sdist: {len(sdist_names)} entries")
PY

check_registered
step "ok"
