-- rebuild_swap: switch an app to a rebuild's generation in one step (a reconcile's end),
-- whatever the app's size: its indexes are renamed over the live ones and the app's gen set
-- to the new generation; the old generation's indexes are renamed aside and the generation
-- marked retired in `rebuilds`, for its keys to be deleted after.
-- KEYS[1]  the app's gen  KEYS[2] its rebuilds hash  KEYS[3] audit list
-- KEYS[4]  this month's metering hash
-- KEYS[5..8]   the live users, strays, groups, av_rooms (limiter/store/keys.py: indexes)
-- KEYS[9..12]  the rebuild's, in the same order (its strays are only its own index: dropped)
-- KEYS[13..16] where the old generation's go (its av_rooms: dropped)
-- KEYS[17] the rebuild's gen  KEYS[18] the rebuild's seen set
-- ARGV[1]  the audit entry (JSON)   ARGV[2] how many audit entries to keep
-- ARGV[3]  today, ARGV[4] the month's first day (YYYY-MM-DD), ARGV[5] metering retention (s)
-- ARGV[6]  the live generation the rebuild was compared with  ARGV[7] the new generation
-- ARGV[8..10] how many elements the rebuild's users, groups and av_rooms must hold
-- ARGV[11] what `rebuilds` holds for a retired generation (limiter/store/keys.py: RETIRED)
-- Returns  the number of live groups after the switch; -1 (nothing switched) when a rebuilt
--          index does not hold what was loaded (it was evicted), -2 when the live generation
--          is no longer the one compared (another reconcile switched first)
local USERS, STRAYS, GROUPS, ROOMS = 0, 1, 2, 3
local LIVE, NEW, OLD = 5, 9, 13
local checked = {{USERS, "SCARD", 8}, {GROUPS, "HLEN", 9}, {ROOMS, "SCARD", 10}}
for _, check in ipairs(checked) do
  if redis.call(check[2], KEYS[NEW + check[1]]) ~= tonumber(ARGV[check[3]]) then
    return -1
  end
end
if (redis.call("GET", KEYS[1]) or "0") ~= ARGV[6] then
  return -2
end
local before = redis.call("HLEN", KEYS[LIVE + GROUPS])
for _, index in ipairs({USERS, STRAYS, GROUPS}) do
  if redis.call("EXISTS", KEYS[LIVE + index]) == 1 then
    redis.call("RENAME", KEYS[LIVE + index], KEYS[OLD + index])
  end
end
redis.call("UNLINK", KEYS[LIVE + ROOMS], KEYS[NEW + STRAYS], KEYS[17], KEYS[18])
for _, index in ipairs({USERS, GROUPS, ROOMS}) do
  if redis.call("EXISTS", KEYS[NEW + index]) == 1 then
    redis.call("RENAME", KEYS[NEW + index], KEYS[LIVE + index])
  end
end
redis.call("SET", KEYS[1], ARGV[7])
redis.call("HDEL", KEYS[2], ARGV[7])
redis.call("HSET", KEYS[2], ARGV[6], ARGV[11])
local after = redis.call("HLEN", KEYS[LIVE + GROUPS])
track_groups(KEYS[4], before, after, ARGV[3], ARGV[4], ARGV[5])
audit(KEYS[3], ARGV[1], ARGV[2])
return after
