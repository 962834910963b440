#!/usr/bin/env bash
# Generates a Python client from openapi.json with openapi-python-client and
# checks the models that once came out wrong: the sign-up body must be one
# class whose constructor requires `email` and `password` (a sibling `anyOf`
# once made it `SignUpRequestType0(name)`, with no email at all). The tool
# lives in a venv under target/ci-pyclient-venv, pinned; about 10 s once
# installed. Only .ci/run calls this. Environment: PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly ROOT="$PWD"
readonly VENV="$ROOT/target/ci-pyclient-venv"
readonly OUT="$ROOT/target/ci-pyclient"
readonly PINS="openapi-python-client==0.29.1"

log() { printf 'py-client: %s\n' "$*" >&2; }

if [[ "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]]; then
    log "installing $PINS into $VENV"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
    echo "$PINS" >"$VENV/.pins"
fi

rm -rf "$OUT"
log "generating a client from openapi.json"
# --meta none: just the package. Its warnings (the binary avatar and the
# OpenMetrics text, which it has no models for) are printed, not fatal.
"$VENV/bin/openapi-python-client" generate --path openapi.json \
    --output-path "$OUT" --meta none >"$ROOT/target/ci-pyclient.log" 2>&1 || {
    cat "$ROOT/target/ci-pyclient.log" >&2
    exit 1
}

PYTHONPATH="$(dirname "$OUT")" "$VENV/bin/python" - "$(basename "$OUT")" <<'PY'
import importlib
import inspect
import sys

models = importlib.import_module(f"{sys.argv[1]}.models")

def required(cls):
    return [name for name, p in inspect.signature(cls).parameters.items()
            if p.default is inspect.Parameter.empty]

problems = []
for name, must in [("SignUpRequest", ["email", "password"]),
                   ("LogInRequest", ["email", "password"])]:
    cls = getattr(models, name, None)
    if cls is None:
        problems.append(f"no model {name}")
    elif required(cls) != must:
        problems.append(f"{name} requires {required(cls)}, not {must}")
if not problems:
    fields = {"email": "ann@example.com", "password": "correct horse battery staple",
              "first_name": "Ann", "last_name": "Lee"}
    body = models.SignUpRequest(**fields).to_dict()
    if body != fields:
        problems.append(f"SignUpRequest.to_dict() gave {sorted(body)}")
if problems:
    sys.exit("py-client: " + "; ".join(problems))
PY
log "ok"
