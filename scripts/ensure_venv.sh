#!/usr/bin/env bash
# Create or reuse a virtualenv and install packages into it with uv.
#
#   ensure_venv.sh --venv DIR --python PY [--uv UV] [--stamp-files "F1 F2"] -- <uv pip install args...>
#
# Without --uv, the venv is made with `PY -m venv` and uv is pip-installed into it (the dev venv).
# With --uv, that uv makes the venv (`uv venv --python PY`; used for the matrix venvs).
# Reuse: DIR/.install-stamp holds a hash of the stamp files (default: pyproject.toml Makefile),
# the interpreter version and the install arguments; when it matches, nothing is installed.
# A venv built on another Python version is removed and rebuilt.
set -euo pipefail

venv="" py="" uv="" stamp_files="pyproject.toml Makefile"
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    --uv) uv=$2; shift 2 ;;
    --stamp-files) stamp_files=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ensure_venv.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$venv" ] && [ -n "$py" ] || { echo "ensure_venv.sh: --venv and --python are required" >&2; exit 2; }

if ! want_ver=$("$py" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null); then
  echo "error: interpreter '$py' does not run" >&2
  exit 1
fi
# shellcheck disable=SC2086  # stamp_files is a space-separated list on purpose
key=$( { cat $stamp_files; printf '\n%s\n' "python=$want_ver"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16)
stamp="$venv/.install-stamp"

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
  echo "[venv] reusing $venv (Python $want_ver, stamp $key up to date)"
  exit 0
fi

have_ver=$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || true)
if [ -d "$venv" ] && [ "$have_ver" != "$want_ver" ]; then
  echo "[venv] $venv has Python '${have_ver:-broken}', want $want_ver: recreating"
  rm -rf "$venv"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[venv] creating $venv with $py (Python $want_ver)"
  if [ -n "$uv" ]; then
    "$uv" venv --quiet --python "$py" "$venv"
  else
    "$py" -m venv "$venv"
  fi
fi
if [ -z "$uv" ]; then
  if ! [ -x "$venv/bin/uv" ]; then
    "$venv/bin/python" -m pip install --quiet uv
  fi
  uv="$venv/bin/uv"
fi

echo "[venv] installing into $venv: $*"
start=$(date +%s)
# UV_COMPILE_BYTECODE: this machine sets PYTHONDONTWRITEBYTECODE=1, so without compiled bytecode
# every process would recompile airflow (import airflow.sdk 1.4 s -> 3.5 s).
UV_COMPILE_BYTECODE=1 "$uv" pip install --quiet --python "$venv/bin/python" "$@"
rm -f "$stamp"
echo "$key" >"$stamp"
echo "[venv] $venv ready in $(( $(date +%s) - start ))s"
