#!/usr/bin/env bash
# Run the pytest suite with the given interpreter: scripts/pytest.sh PYTHON [pytest args...]
#
# - The interpreter's venv bin/ goes first on PATH, so tests that start `airflow ...` (deployment
#   tests: `airflow standalone`) get the Airflow of the venv under test.
# - Unless the caller set one, AIRFLOW_HOME is a fresh temporary folder (removed afterwards), so a
#   run never writes ~/airflow and the matrix legs (different Airflow versions) share no config/DB.
# - The run is bounded by PYTEST_TIME_LIMIT seconds (default 1200; a whole leg takes ~4-6 min): past
#   it pytest gets SIGINT, so it prints where it was stuck and its summary, and SIGKILL 60 s later.
#   With faulthandler_timeout (pyproject.toml) a hang is a red stage with stacks, never CI's timeout.
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
limit=${PYTEST_TIME_LIMIT:-1200}
timeout --signal=INT --kill-after=60 "$limit" "$py" -m pytest "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "error: pytest did not finish within PYTEST_TIME_LIMIT=${limit}s and was stopped: $py -m pytest $*" >&2
fi
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests (exit 5) with: $py -m pytest $*" >&2
fi
exit "$rc"
