-- rebuild_swap: switch an app to its rebuilt relation keys in one step (a reconcile's end).
-- KEYS[1..8]   the live keys: users friends friended_by groups members joined joined_free av_rooms
-- KEYS[9..16]  the rebuilt keys, in the same order (absent = empty)
-- KEYS[17]     audit list   KEYS[18] this month's metering hash
-- ARGV[1]  the audit entry (JSON)   ARGV[2] how many audit entries to keep
-- ARGV[3]  today, ARGV[4] the month's first day (YYYY-MM-DD), ARGV[5] metering retention (s)
-- ARGV[6..13]  how many elements each rebuilt key must hold (what the loads added)
-- Returns  the number of live groups after the switch, or -1 (nothing switched) when a
--          rebuilt key does not hold what was loaded (it expired or was evicted)
local size_of = {"SCARD", "ZCARD", "ZCARD", "HLEN", "ZCARD", "ZCARD", "ZCARD", "SCARD"}
for i = 1, 8 do
  if redis.call(size_of[i], KEYS[i + 8]) ~= tonumber(ARGV[i + 5]) then
    return -1
  end
end
local before = redis.call("HLEN", KEYS[4])
for i = 1, 8 do
  -- UNLINK frees a big old value in the background instead of blocking the server.
  redis.call("UNLINK", KEYS[i])
  if redis.call("EXISTS", KEYS[i + 8]) == 1 then
    redis.call("RENAME", KEYS[i + 8], KEYS[i])
    redis.call("PERSIST", KEYS[i])
  end
end
local after = redis.call("HLEN", KEYS[4])
track_groups(KEYS[18], before, after, ARGV[3], ARGV[4], ARGV[5])
redis.call("LPUSH", KEYS[17], ARGV[1])
redis.call("LTRIM", KEYS[17], 0, tonumber(ARGV[2]) - 1)
return after
