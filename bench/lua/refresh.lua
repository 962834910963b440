-- refresh.lua: wrk script for `POST /refresh/` with refresh tokens from the
-- file BENCH_TOKENS (the service runs without rotation, so a token stays
-- valid and can be presented again). Requests are built once, in init().
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local built, next_one = {}, 0

function init(args)
   for _, token in ipairs(common.lines(common.env("BENCH_TOKENS"))) do
      built[#built + 1] = wrk.format("POST", "/refresh/", {
         ["Content-Type"] = "application/json",
         ["Host"] = wrk.headers["Host"],
      }, '{"refresh_token": "' .. token .. '"}')
   end
   next_one = (id or 0) * 7
end

function request()
   next_one = next_one % #built + 1
   return built[next_one]
end
