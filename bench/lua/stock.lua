-- POST /v1/products/{id}/stock with delta +1 (never runs out) on a random product id from a file.
-- Usage: wrk ... -s stock.lua URL -- IDS_FILE
local common = require "common"
setup, done = common.setup, common.done
local ids
local body = '{"delta":1,"reason":"bench"}'

function init(args)
  ids = common.lines(args[1])
  math.randomseed(os.time() * 100 + thread_id)
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  return wrk.format("POST", "/v1/products/" .. ids[math.random(#ids)] .. "/stock", nil, body)
end
