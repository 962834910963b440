# Sourced by the ci/ scripts: start the real binary on 127.0.0.1:0 with a
# fresh database and learn its address from its `listening on ADDR` line.
#
#   start_server WORKDIR [FLAGS...]  sets SERVER_PID and BASE (http://ADDR);
#                                    stdout and the log stay in WORKDIR
#   stop_server                      SIGTERM, wait; returns the exit status
#                                    (the service exits 0 on SIGTERM)
# Expects BIN (the binary) and a log function.

SERVER_PID=""
BASE=""

start_server() {
    local work="$1" addr=""
    shift
    # Created here, not by the child's redirection, so the first poll can
    # never race it.
    : >"$work/stdout"
    "$BIN" serve --listen 127.0.0.1:0 --db "$work/latchkey.db" "$@" \
        >"$work/stdout" 2>"$work/server.log" &
    SERVER_PID=$!
    # Poll (for at most 20 s) for the announced address instead of guessing a port.
    for _ in $(seq 1 200); do
        addr="$(sed -n 's/^listening on //p' "$work/stdout" | head -n 1)"
        [[ -n "$addr" ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "latchkey exited before listening:"
            cat "$work/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
    if [[ -z "$addr" ]]; then
        log "latchkey did not announce its address within 20 s"
        cat "$work/server.log" >&2
        return 1
    fi
    BASE="http://${addr#http://}"
    log "latchkey listening on $BASE"
}

stop_server() {
    local code=0
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" || code=$?
        SERVER_PID=""
    fi
    return "$code"
}
