#!/usr/bin/env bash
# Creates (or reuses) the private Python venv holding the real components the tests drive (the
# pinned `mlflow` client, the moto S3 server), and prints its python. Reused while
# tests/python/requirements.txt is unchanged. Location: $KILN_TEST_VENV, else ${XDG_CACHE_HOME:-$HOME/.cache}/kiln/test-venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/tests/python/requirements.txt"
venv="${KILN_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/test-venv}"
stamp="$venv/.kiln-requirements"
if [ ! -x "$venv/bin/python" ]; then
  echo "python-env: creating $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "${PYTHON:-python3}" -m venv "$venv"
fi
if ! cmp -s "$req" "$stamp"; then
  echo "python-env: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv (first run takes a few minutes)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
