-- destroy_group: delete a group, releasing every member's count and its AV chat room slot.
-- KEYS[1] groups  KEYS[2] members  KEYS[3] joined  KEYS[4] joined_free  KEYS[5] av_rooms
-- KEYS[6] this month's metering hash (its peak of live groups is kept here)
-- ARGV[1]  group id
-- ARGV[2]  today, ARGV[3] the month's first day (YYYY-MM-DD), ARGV[4] metering retention (s)
-- Returns  the number of members released, or -1 when the group did not exist
local group = ARGV[1]
if redis.call("HDEL", KEYS[1], group) == 0 then
  return -1
end
redis.call("SREM", KEYS[5], group)
local groups = redis.call("HLEN", KEYS[1])
track_groups(KEYS[6], groups + 1, groups, ARGV[2], ARGV[3], ARGV[4])
local members = related(KEYS[2], group)
redis.call("ZREMRANGEBYLEX", KEYS[2], "[" .. group .. SEP, "(" .. group .. "\1")
local joins = {}
for i, user in ipairs(members) do
  joins[i] = user .. SEP .. group
end
unlink_all(KEYS[3], joins)
unlink_all(KEYS[4], joins)
return #members
