-- wrk script for bench/load.sh. Arguments (after "--"): MODE [SAMPLE].
--   healthz  GET /healthz (the baseline)
--   healthzq GET /healthz?ip=A with A drawn as for ip: the baseline with the
--            client doing the same Lua work per request as for ip
--   ip       GET /ip?ip=A, A random: 1 in 10 drawn from SAMPLE (addresses
--            the synthetic feed lists), the rest random public-looking IPv4
--            addresses (almost all unlisted, almost never in the cache);
--            requests prebuilt in init from a pool of POOL addresses
--   authz    GET /authz with X-Forwarded-For: A, the same mix (the server
--            trusts 127.0.0.1 as a proxy); listed ones answer 403
--   iphot    GET /ip over a fixed pool of 10,000 such addresses, so that
--            after the first pass every answer comes from the cache
-- healthz, ip, authz and iphot hand out prebuilt requests, so the client
-- does the same work per request in each; healthzq builds its request per
-- call, as ip did before, to show the client's share.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

-- mode is global so that done(), which runs in the setup state, can read
-- it from a thread.
mode = nil
local listed, pool, fixed

local function random_addr()
  while true do
    local a = math.random(1, 223)
    if a ~= 10 and a ~= 127 then
      return string.format("%d.%d.%d.%d", a, math.random(0, 255), math.random(0, 255), math.random(0, 255))
    end
  end
end

local function mixed_addr()
  if math.random(10) == 1 then
    return listed[math.random(#listed)]
  end
  return random_addr()
end

function init(args)
  mode = args[1] or "healthz"
  math.randomseed(os.time() * 1000 + (id or 0))
  fixed = wrk.format("GET", "/healthz")
  if mode ~= "healthz" then
    listed = {}
    for line in io.lines(args[2]) do
      listed[#listed + 1] = line
    end
  end
  if mode == "iphot" then
    pool = {}
    for i = 1, 10000 do
      pool[i] = wrk.format("GET", "/ip?ip=" .. mixed_addr())
    end
  elseif mode == "ip" or mode == "authz" then
    -- Requests are built once here, so that the client's work per request
    -- is the same as for the fixed /healthz request: a large pool of
    -- distinct random addresses (POOL, default 1,000,000 per thread), far more
    -- than the answer cache holds, so nearly every answer is a cache miss.
    pool = {}
    local n = tonumber(os.getenv("POOL") or "1000000")
    for i = 1, n do
      if mode == "ip" then
        pool[i] = wrk.format("GET", "/ip?ip=" .. mixed_addr())
      else
        pool[i] = wrk.format("GET", "/authz", { ["X-Forwarded-For"] = mixed_addr() })
      end
    end
  end
end

function request()
  if mode == "healthz" then
    return fixed
  elseif mode == "healthzq" then
    return wrk.format("GET", "/healthz?ip=" .. mixed_addr())
  end
  return pool[math.random(#pool)]
end

function done(summary, latency, requests)
  local mode = threads[1]:get("mode")
  local e = summary.errors
  io.write(string.format(
    "RESULT mode=%s requests=%d duration_us=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
    mode, summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
