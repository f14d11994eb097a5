-- POST /v1/products with a SKU unique to this run, thread and request, in an existing category.
-- Usage: wrk ... -s create.lua URL -- RUN_TAG CATEGORY_SLUG
local common = require "common"
setup, done = common.setup, common.done
local tag, category
local n = 0

function init(args)
  tag, category = args[1], args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format(
    '{"sku":"%s-%d-%d","name":"Bench product","category":"%s","price":"9.99","currency":"EUR","stock":5}',
    tag, thread_id, n, category)
  return wrk.format("POST", "/v1/products", nil, body)
end
