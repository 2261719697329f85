-- rebuild_swap: switch an app to its rebuilt relation keys in one step (a reconcile's end).
-- KEYS[1]      the live groups hash (its size before and after is the month's peak of groups)
-- KEYS[2]      audit list   KEYS[3] this month's metering hash
-- KEYS[4..]    pairs: a live relation key, its rebuilt key (absent = empty); every relation
--              key of the app once (limiter/store/keys.py: AppKeys.relations)
-- ARGV[1]  the audit entry (JSON)   ARGV[2] how many audit entries to keep
-- ARGV[3]  today, ARGV[4] the month's first day (YYYY-MM-DD), ARGV[5] metering retention (s)
-- ARGV[6..]  per pair, how many elements the rebuilt key must hold (what the loads added)
-- Returns  the number of live groups after the switch, or -1 (nothing switched) when a
--          rebuilt key does not hold what was loaded (it expired or was evicted)
local FIRST_PAIR, FIRST_SIZE = 4, 6
local size_of = {set = "SCARD", zset = "ZCARD", hash = "HLEN"}
for i = FIRST_PAIR, #KEYS, 2 do
  local rebuilt = KEYS[i + 1]
  local kind = redis.call("TYPE", rebuilt)["ok"]
  local held = kind == "none" and 0 or redis.call(size_of[kind], rebuilt)
  if held ~= tonumber(ARGV[FIRST_SIZE + (i - FIRST_PAIR) / 2]) then
    return -1
  end
end
local before = redis.call("HLEN", KEYS[1])
for i = FIRST_PAIR, #KEYS, 2 do
  -- UNLINK frees a big old value in the background instead of blocking the server.
  redis.call("UNLINK", KEYS[i])
  if redis.call("EXISTS", KEYS[i + 1]) == 1 then
    redis.call("RENAME", KEYS[i + 1], KEYS[i])
    redis.call("PERSIST", KEYS[i])
  end
end
local after = redis.call("HLEN", KEYS[1])
track_groups(KEYS[3], before, after, ARGV[3], ARGV[4], ARGV[5])
audit(KEYS[2], ARGV[1], ARGV[2])
return after
