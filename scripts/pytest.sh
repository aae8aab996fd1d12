#!/usr/bin/env bash
# Run the pytest suite with the given interpreter: scripts/pytest.sh PYTHON [pytest args...]
#
# - The interpreter's venv bin/ goes first on PATH, so tests that start `airflow ...` (deployment
#   tests: `airflow standalone`) get the Airflow of the venv under test.
# - Unless the caller set one, AIRFLOW_HOME is a fresh temporary folder (removed afterwards), so a
#   run never writes ~/airflow and the matrix legs (different Airflow versions) share no config/DB.
# - pytest's exit code 5 ("no tests collected") is a failure here, with a message saying so.
set -uo pipefail
py=${1:?usage: pytest.sh PYTHON [pytest args...]}
shift
PATH="$(cd "$(dirname "$py")" && pwd):$PATH"
export PATH
if [ -z "${AIRFLOW_HOME:-}" ]; then
  AIRFLOW_HOME=$(mktemp -d "${TMPDIR:-/tmp}/partneros-pytest-airflow-home.XXXXXX")
  export AIRFLOW_HOME
  trap 'rm -rf "$AIRFLOW_HOME"' EXIT
fi
export AIRFLOW__CORE__LOAD_EXAMPLES=${AIRFLOW__CORE__LOAD_EXAMPLES:-False}
"$py" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests (exit 5) with: $py -m pytest $*" >&2
fi
exit "$rc"
