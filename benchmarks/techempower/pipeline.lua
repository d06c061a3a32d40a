-- TechEmpower's plaintext load: each write sends `depth` requests at once (HTTP pipelining).
--   wrk -s pipeline.lua http://127.0.0.1:8000/plaintext -- 16
init = function(args)
  local depth = tonumber(args[1]) or 1
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format()
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end
