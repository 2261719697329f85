-- delete_users: unregister accounts and release every relation they hold.
-- KEYS[1] users  KEYS[2] friends  KEYS[3] friended_by  KEYS[4] members  KEYS[5] joined
-- KEYS[6] joined_free (namespaces)  KEYS[7] strays  KEYS[8] gen (derived: each user's keys
--          and the other side of each of its relations)
-- ARGV[1..] user ids, distinct
-- Returns  per user, three integers: 1 if it was registered (else 0), friendships released
--          (entries on either side), group memberships released.
use_generation(KEYS[8])
local out = {}
for i = 1, #ARGV do
  local user = ARGV[i]
  local registered = redis.call("SREM", KEYS[1], user)
  redis.call("SREM", KEYS[7], user)
  local friendships = 0
  for _, peer in ipairs(related(KEYS[2], user)) do
    unlink(KEYS[2], user, peer)
    unlink(KEYS[3], peer, user)
    friendships = friendships + 1
  end
  for _, peer in ipairs(related(KEYS[3], user)) do
    unlink(KEYS[3], user, peer)
    unlink(KEYS[2], peer, user)
    friendships = friendships + 1
  end
  local memberships = 0
  for _, joined in ipairs({KEYS[5], KEYS[6]}) do
    for _, group in ipairs(related(joined, user)) do
      unlink(joined, user, group)
      unlink(KEYS[4], group, user)
      memberships = memberships + 1
    end
  end
  out[#out + 1] = registered
  out[#out + 1] = friendships
  out[#out + 1] = memberships
end
return out
