-- destroy_group: delete a group, releasing every member's count and its AV chat room slot.
-- KEYS[1] groups  KEYS[2] members  KEYS[3] joined  KEYS[4] joined_free (namespaces)
-- KEYS[5] av_rooms  KEYS[6] this month's metering hash (its peak of live groups is kept here)
-- KEYS[7] users  KEYS[8] strays (unused)  KEYS[9] gen (derived: the group's members, each
--          member's joined and joined_free)
-- ARGV[1]  group id
-- ARGV[2]  today, ARGV[3] the month's first day (YYYY-MM-DD), ARGV[4] metering retention (s)
-- Returns  the number of members released, or -1 when the group did not exist
local group = ARGV[1]
use_generation(KEYS[9])
if redis.call("HDEL", KEYS[1], group) == 0 then
  return -1
end
redis.call("SREM", KEYS[5], group)
local groups = redis.call("HLEN", KEYS[1])
track_groups(KEYS[6], groups + 1, groups, ARGV[2], ARGV[3], ARGV[4])
local members = related(KEYS[2], group)
redis.call("UNLINK", entity(KEYS[2], group))
for _, user in ipairs(members) do
  unlink(KEYS[3], user, group)
  unlink(KEYS[4], user, group)
end
return #members
