#!/usr/bin/env bash
# Run the pytest suite with the given interpreter: scripts/pytest.sh PYTHON [pytest args...]
# pytest's exit code 5 ("no tests collected") is a failure here, with a message saying so.
set -uo pipefail
py=${1:?usage: pytest.sh PYTHON [pytest args...]}
shift
"$py" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests (exit 5) with: $py -m pytest $*" >&2
fi
exit "$rc"
