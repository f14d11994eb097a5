-- GET a random path from a file (one path per line): point reads by id, list pages, deep cursors.
-- Usage: wrk ... -s paths.lua URL -- PATHS_FILE
local common = require "common"
setup, done = common.setup, common.done
local paths

function init(args)
  paths = common.lines(args[1])
  math.randomseed(os.time() * 100 + thread_id)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
