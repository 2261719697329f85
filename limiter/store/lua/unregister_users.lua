-- unregister_users: take accounts off the app's count without touching their relations
-- (releases a reservation whose caller failed; delete_users is the full deletion).
-- KEYS[1]  users set  KEYS[2] strays  KEYS[3] gen
-- KEYS[4..] the user-side namespaces: friends, friended_by, joined, joined_free (derived:
--           each user's keys, only to see whether it still holds relations)
-- ARGV[1..] user ids
-- Returns  the number of accounts removed
use_generation(KEYS[3])
local removed = 0
for i = 1, #ARGV do
  local user = ARGV[i]
  if redis.call("SREM", KEYS[1], user) == 1 then
    removed = removed + 1
    for k = 4, #KEYS do
      if redis.call("EXISTS", entity(KEYS[k], user)) == 1 then
        redis.call("SADD", KEYS[2], user) -- it still holds relations: keep it indexed
        break
      end
    end
  end
end
return removed
