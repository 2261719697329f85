-- remove_friend_edges: remove directed friend-list entries (both-way removal passes both).
-- KEYS[1]  friends namespace  KEYS[2] friended_by namespace  KEYS[3] gen (derived: the
--          friends and friended_by of each side)
-- ARGV[1..] pairs: owner of the list, the friend to remove from it
-- Returns  per pair: 1 removed, 0 was not there
use_generation(KEYS[3])
local out = {}
for i = 1, #ARGV, 2 do
  local removed = unlink(KEYS[1], ARGV[i], ARGV[i + 1])
  unlink(KEYS[2], ARGV[i + 1], ARGV[i])
  out[#out + 1] = removed
end
return out
