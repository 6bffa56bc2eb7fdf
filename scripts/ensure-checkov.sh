#!/usr/bin/env bash
# Creates .venv-checkov/ from requirements-checkov.txt (again whenever that file changes). checkov
# pins older boto3/botocore than requirements.txt, so it lives in its own venv and the tests run it
# as a subprocess. In CI (CI=true) a failed install is an error; elsewhere the scan is skipped.
set -uo pipefail  # pipefail: a failing pip is not hidden by the grep after it
cd "$(dirname "$0")/.."
venv=.venv-checkov
req=requirements-checkov.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/checkov" ] && [ "$(cat "$venv/.requirements-sha256" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "installing checkov into $venv (pinned in $req)..." >&2
rm -rf "$venv"
if "${PYTHON:-python3}" -m venv "$venv" \
   && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; } \
   && "$venv/bin/checkov" --version >/dev/null; then
  echo "$want" > "$venv/.requirements-sha256"
  exit 0
fi
msg="could not install checkov into $venv from $req"
if [ "${CI:-}" = "true" ]; then echo "error: $msg" >&2; exit 1; fi
echo "warning: $msg; the checkov scan in tests/test_security.py will be skipped" >&2
exit 0
