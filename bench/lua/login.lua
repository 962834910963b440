-- login.lua: wrk script for `POST /login/`, as user N@bench.example with N
-- drawn at random below BENCH_USERS, with the password BENCH_PASSWORD (the
-- right one, or a wrong one for the failed-login scenario). Counts status
-- codes and checks Retry-After on 429/503 (used for the 1,000-connection flood).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local users, password

function init(args)
   users = tonumber(common.env("BENCH_USERS"))
   password = common.env("BENCH_PASSWORD")
   math.randomseed(os.time() * 100 + (id or 0))
end

function request()
   local email = "user" .. math.random(0, users - 1) .. "@bench.example"
   return wrk.format("POST", "/login/", { ["Content-Type"] = "application/json" },
      '{"email": "' .. email .. '", "password": "' .. password .. '"}')
end

function response(status, headers, body)
   common.count(status, headers)
end
