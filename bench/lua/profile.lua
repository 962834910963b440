-- profile.lua: wrk script for `GET /profile/` with a Bearer access token,
-- cycling through the tokens in the file BENCH_TOKENS (one per user, so the
-- reads spread over several users). Requests are built once, in init().
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local built, next_one = {}, 0

function init(args)
   for _, token in ipairs(common.lines(common.env("BENCH_TOKENS"))) do
      built[#built + 1] = wrk.format("GET", "/profile/", {
         ["Authorization"] = "Bearer " .. token,
         ["Host"] = wrk.headers["Host"],
      })
   end
   next_one = (id or 0) * 7
end

function request()
   next_one = next_one % #built + 1
   return built[next_one]
end
