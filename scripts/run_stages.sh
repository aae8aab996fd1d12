#!/usr/bin/env bash
# Run make targets in order, stop at the first failure, and print how long each took.
#   scripts/run_stages.sh venv lint typecheck ...
set -uo pipefail
make_cmd=${MAKE:-make}
names=() secs=() results=()
total_start=$(date +%s)

summary() {
  echo
  echo "==================== stage times ===================="
  local i
  for i in "${!names[@]}"; do
    printf '  %-16s %-6s %5ss\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}"
  done
  printf '  %-16s %-6s %5ss\n' "total" "" "$(( $(date +%s) - total_start ))"
  echo "====================================================="
}

for stage in "$@"; do
  echo
  echo "==> [$(date +%H:%M:%S)] stage: $stage"
  start=$(date +%s)
  "$make_cmd" --no-print-directory "$stage"
  rc=$?
  names+=("$stage") secs+=("$(( $(date +%s) - start ))")
  if [ "$rc" -ne 0 ]; then
    results+=("FAILED")
    summary
    echo "stage '$stage' failed (exit $rc); later stages were not run." >&2
    exit "$rc"
  fi
  results+=("ok")
done
summary
