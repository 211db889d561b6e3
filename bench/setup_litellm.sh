#!/usr/bin/env bash
# Installs the benchmark's peer, LiteLLM's proxy, into its own venv .venv-litellm at the repo root,
# so its many dependencies never touch the project's test venv .venv. Idempotent: does nothing
# when every `name==version` pin of bench/requirements-litellm.txt is already installed there.
set -euo pipefail
cd "$(dirname "$0")/.."

REQ=bench/requirements-litellm.txt
VENV=.venv-litellm
PYTHON=${PYTHON:-python3}

die() { echo "setup_litellm: $*" >&2; exit 1; }

[ -f "$REQ" ] || die "missing $REQ"
WANT=$(sed -n 's/^litellm\[proxy\]==\([^[:space:]#]*\).*/\1/p' "$REQ" | head -n1)
[ -n "$WANT" ] || die "no 'litellm[proxy]==VERSION' line in $REQ"

# Exit 0 when every pin in $REQ is installed in $VENV at its version.
pins_satisfied() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/litellm" ] || return 1
    "$VENV/bin/python" - "$REQ" <<'PY' 2>/dev/null
import importlib.metadata as md, re, sys
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
    if not m:
        continue
    if md.version(m.group(1)) != m.group(3):
        sys.exit(1)
PY
}

if pins_satisfied; then
    echo "setup_litellm: litellm $WANT already installed in $VENV"
    exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=...)"
if [ ! -x "$VENV/bin/python" ]; then
    echo "setup_litellm: creating $VENV"
    "$PYTHON" -m venv "$VENV" \
        || die "could not create $VENV with $PYTHON -m venv (Debian: apt-get install python3-venv)"
fi

echo "setup_litellm: installing $REQ into $VENV (about a minute)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" \
    || die "pip install -r $REQ into $VENV failed (see pip's output above)"

pins_satisfied || die "after the install, $VENV still does not match the pins in $REQ"
LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/litellm" --version >/dev/null 2>&1 \
    || die "$VENV/bin/litellm --version failed; run it by hand to see why"
echo "setup_litellm: litellm $WANT installed in $VENV"
