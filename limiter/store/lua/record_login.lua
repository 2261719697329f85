-- record_login: count a user once per billing day, and keep the month's peak of those counts.
-- KEYS[1]  the day's user set (dropped when the day closes)
-- KEYS[2]  the month's metering hash  KEYS[3] users
-- ARGV[1]  user id
-- ARGV[2]  the day (YYYY-MM-DD)
-- ARGV[3]  seconds until the day closes (from the caller's now; <= 0: it has closed)
-- ARGV[4]  metering retention (s): the month hash expires this long after its last write
-- ARGV[5]  "1": accounts first, a user that is not a registered account is not counted
-- Returns  {outcome, count}: outcome 1 first login of the day, 0 seen already, -1 the day
--          had closed or its set was lost (nothing counted), -2 not a registered account
--          (nothing counted); count is the day's distinct
--          users after the call
local field = "dau:" .. ARGV[2]
local closes_in = tonumber(ARGV[3])
if closes_in <= 0 then
  return {-1, tonumber(redis.call("HGET", KEYS[2], field) or "0")}
end
if ARGV[5] == "1" and not registered(KEYS[3], ARGV[1]) then
  return {-2, redis.call("SCARD", KEYS[1])}
end
if redis.call("SADD", KEYS[1], ARGV[1]) == 0 then
  return {0, redis.call("SCARD", KEYS[1])}
end
local count = redis.call("SCARD", KEYS[1])
if count == 1 then
  local stored = tonumber(redis.call("HGET", KEYS[2], field) or "0")
  if stored > 0 then
    -- The day's set is gone (expired or evicted) while the day was counted: counting anew
    -- would shrink the day's count, so the day is closed.
    redis.call("DEL", KEYS[1])
    return {-1, stored}
  end
  redis.call("EXPIRE", KEYS[1], closes_in)
end
if count > tonumber(redis.call("HGET", KEYS[2], "peak_dau") or "0") then
  redis.call("HSET", KEYS[2], field, count, "peak_dau", count, "peak_dau_day", ARGV[2])
else
  redis.call("HSET", KEYS[2], field, count)
end
redis.call("EXPIRE", KEYS[2], ARGV[4])
return {1, count}
