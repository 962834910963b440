#!/usr/bin/env bash
# Generated TypeScript client against the real binary:
#   1. openapi-typescript generates types from openapi.json;
#   2. `tsc --strict` compiles ci/ts-client/client.ts against them (it signs
#      up, logs in, reads and updates the profile, refreshes; and it holds
#      `@ts-expect-error` lines that fail the build if a sign-up body without
#      `email` or `password` ever type-checks);
#   3. node runs it against target/debug/latchkey, which must be built
#      already (`cargo test` does it). Any mismatch exits non-zero.
#
# The npm packages are pinned by ci/ts-client/package-lock.json and installed
# with `npm ci` into target/ts-client (never committed). About 20 s on 2 cores
# once installed. Needs node >= 18 and npm; only .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly ROOT="$PWD"
readonly SRC="$ROOT/ci/ts-client"
readonly DIR="$ROOT/target/ts-client"
readonly BIN="$ROOT/target/debug/latchkey"

log() { printf 'ts-client: %s\n' "$*" >&2; }

if [[ ! -x "$BIN" ]]; then
    log "$BIN is missing: run cargo build (or cargo test) first"
    exit 1
fi

# --- tools: reinstall only when the lock file changed ----------------------
mkdir -p "$DIR"
if ! cmp -s "$SRC/package-lock.json" "$DIR/package-lock.json" || [[ ! -d "$DIR/node_modules" ]]; then
    log "installing the pinned packages into $DIR"
    rm -rf "$DIR/node_modules"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
    (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- generate and compile --------------------------------------------------
rm -rf "$DIR/src" "$DIR/out" "$DIR/run"
mkdir -p "$DIR/src" "$DIR/run"
cp "$SRC/client.ts" "$SRC/tsconfig.json" "$DIR/"
mv "$DIR/client.ts" "$DIR/src/"
log "generating types from openapi.json"
"$DIR/node_modules/.bin/openapi-typescript" "$ROOT/openapi.json" -o "$DIR/src/schema.d.ts" >/dev/null
log "compiling with tsc --strict"
"$DIR/node_modules/.bin/tsc" -p "$DIR/tsconfig.json" --strict

# --- run against the binary ------------------------------------------------
# shellcheck source=ci/server.sh
source ci/server.sh
trap 'stop_server || true' EXIT
start_server "$DIR/run"

status=0
timeout --kill-after=5 60 node "$DIR/out/client.js" "$BASE" || status=$?
if ! stop_server; then
    log "latchkey did not exit 0 on SIGTERM"
    status=1
fi
if [[ "$status" -ne 0 ]]; then
    log "FAILED; the server's log is in $DIR/run"
    cat "$DIR/run/server.log" >&2
    exit "$status"
fi
log "ok"
