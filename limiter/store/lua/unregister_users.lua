-- unregister_users: take accounts off the app's count without touching their relations
-- (releases a reservation whose caller failed; delete_users is the full deletion).
-- KEYS[1]  users set
-- ARGV[1..] user ids
-- Returns  the number of accounts removed
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call("SREM", KEYS[1], ARGV[i])
end
return removed
