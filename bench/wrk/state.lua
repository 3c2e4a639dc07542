-- wrk: a small-state load on agentstated, a save then a load of a 40-byte state, alternating,
-- over 1000 runs (bench/http_anchor.sh).
local i = 0
local body = '{"step":1,"messages":["hello","world"]}'
local headers = { ["Content-Type"] = "application/json" }

request = function()
  i = i + 1
  local run = "wrk-" .. (math.floor((i - 1) / 2) % 1000)
  if i % 2 == 1 then
    return wrk.format("POST", "/v1/runs/" .. run .. "?thread_id=t-" .. run .. "&user_id=u&agent_type=a",
                      headers, body)
  end
  return wrk.format("GET", "/v1/runs/" .. run)
end

-- wrk counts every response that is not 2xx or 3xx: a refused save or a load that found
-- nothing makes the run worthless, and says so.
done = function(summary, latency, requests)
  if summary.errors.status > 0 then
    io.stderr:write(string.format("state.lua: %d responses were not 200\n", summary.errors.status))
  end
end
