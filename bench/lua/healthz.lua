-- healthz.lua: wrk script for `GET /healthz`, the in-binary ceiling. No
-- request() or response() callback, so wrk sends one pre-built request at
-- its fastest and spends the least CPU of its own.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/healthz"
