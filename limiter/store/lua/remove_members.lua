-- remove_members: remove users from a group, releasing their groups_per_user count.
-- KEYS[1] groups  KEYS[2] members  KEYS[3] joined  KEYS[4] joined_free (namespaces)
-- KEYS[5] gen (derived: the group's members, each user's joined and joined_free)
-- ARGV[1]  group id
-- ARGV[2..] user ids, distinct
-- Returns  {1 if the group exists else 0, then per user: 1 removed, 0 was not a member}
local group = ARGV[1]
use_generation(KEYS[5])
local out = {redis.call("HEXISTS", KEYS[1], group)}
for i = 2, #ARGV do
  local removed = unlink(KEYS[2], group, ARGV[i])
  unlink(KEYS[3], ARGV[i], group)
  unlink(KEYS[4], ARGV[i], group)
  out[#out + 1] = removed
end
return out
