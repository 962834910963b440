-- signup.lua: wrk script for `POST /signup/` with a new address each time
-- (BENCH_TAG, the per-invocation BENCH_NONCE, wrk's thread number and a
-- counter keep them unique across threads, warm-ups and runs). Counts status
-- codes (201 expected).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local tag, n = "", 0

function init(args)
   tag = common.env("BENCH_TAG") .. "-" .. common.env("BENCH_NONCE") .. "-" .. (id or 0)
end

function request()
   n = n + 1
   local email = "signup-" .. tag .. "-" .. n .. "@bench.example"
   return wrk.format("POST", "/signup/", { ["Content-Type"] = "application/json" },
      '{"email": "' .. email .. '", "password": "bench-Signup-pass-7731", ' ..
      '"first_name": "Bench", "last_name": "User"}')
end

function response(status, headers, body)
   common.count(status, headers)
end
