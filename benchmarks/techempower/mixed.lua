-- Each request the next of the paths given after "--", round-robin: a warm-up that reaches
-- every route, and the --quick smoke load.
--   wrk -s mixed.lua http://127.0.0.1:8000 -- /plaintext /json /db
local paths, last = {}, 0

init = function(args)
  for i, path in ipairs(args) do
    paths[i] = path
  end
end

request = function()
  last = last % #paths + 1
  return wrk.format("GET", paths[last])
end
