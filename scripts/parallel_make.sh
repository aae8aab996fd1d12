#!/usr/bin/env bash
# Run make targets concurrently (each with its own log), then print each log in full with its
# result and time. Fails if any target failed. Used for the version-matrix legs: their suites
# mostly wait (sleeps, timeouts, the stand-in), so two of them share 2 cores well.
#   scripts/parallel_make.sh matrix-min matrix-max
set -uo pipefail
make_cmd=${MAKE:-make}
logdir=$(mktemp -d "${TMPDIR:-/tmp}/partneros-parallel.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

declare -A pid
begin=$(date +%s)
for target in "$@"; do
  (
    "$make_cmd" --no-print-directory "$target" </dev/null >"$logdir/$target.log" 2>&1
    echo $? >"$logdir/$target.rc"
    date +%s >"$logdir/$target.end"
  ) &
  pid[$target]=$!
  echo "[parallel] started $target (its full output follows once it has ended)"
done

rc=0 summary=()
for target in "$@"; do
  wait "${pid[$target]}"
  trc=$(cat "$logdir/$target.rc" 2>/dev/null || echo 1)
  secs=$(( $(cat "$logdir/$target.end" 2>/dev/null || date +%s) - begin ))
  echo
  echo "---------------- $target: output ----------------"
  cat "$logdir/$target.log"
  if [ "$trc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $trc)"
    rc=1
  fi
  echo "---------------- $target: $result after ${secs}s ----------------"
  summary+=("$(printf '  %-16s %-18s %5ss' "$target" "$result" "$secs")")
done
echo
printf '%s\n' "${summary[@]}"
exit "$rc"
