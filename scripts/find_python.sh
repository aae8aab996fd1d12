#!/usr/bin/env bash
# Print the path of a Python interpreter of the given minor version (e.g. "3.10").
# Looks at pyenv installs first (newest patch release wins), then at pythonX.Y on PATH.
# Fails with a clear message when there is none.
set -euo pipefail
want=${1:?usage: find_python.sh X.Y}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
candidates=()
for root in "$pyenv_root" /root/.pyenv; do
  for p in "$root"/versions/"$want".*/bin/python; do
    [ -x "$p" ] && candidates+=("$p")
  done
done
if command -v "python$want" >/dev/null 2>&1; then
  candidates+=("$(command -v "python$want")")
fi
# newest patch release first (version sort), then PATH fallback
for p in $(printf '%s\n' "${candidates[@]+"${candidates[@]}"}" | sort -t/ -V -r -u); do
  if v=$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && [ "$v" = "$want" ]; then
    echo "$p"
    exit 0
  fi
done
echo "error: no Python $want found (looked for $pyenv_root/versions/$want.*/bin/python and python$want on PATH)." >&2
echo "       Install it (e.g. 'pyenv install $want') or put python$want on PATH." >&2
exit 1
