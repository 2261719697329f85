-- record_bandwidth: keep a day's peak AV bandwidth.
-- KEYS[1]  the month's metering hash
-- ARGV[1]  the day (YYYY-MM-DD)
-- ARGV[2]  the bandwidth measured, Mbps (a decimal string)
-- ARGV[3]  metering retention (s)
-- Returns  {1 when it is the day's new peak else 0, the day's peak as a decimal string}
local field = "bandwidth:" .. ARGV[1]
local peak = redis.call("HGET", KEYS[1], field)
if peak and tonumber(peak) >= tonumber(ARGV[2]) then
  return {0, peak}
end
redis.call("HSET", KEYS[1], field, ARGV[2])
redis.call("EXPIRE", KEYS[1], ARGV[3])
return {1, ARGV[2]}
