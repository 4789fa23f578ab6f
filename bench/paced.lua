-- wrk script for the paced rounds of bench/load.sh: the same requests as
-- load.lua, each connection waiting PACE milliseconds (default 2) between
-- requests, so that latency is measured at a steady rate below saturation
-- rather than with the cores fully taken by client and server.
dofile("bench/load.lua")

local pace = tonumber(os.getenv("PACE_MS") or "2")

function delay()
  return pace
end
