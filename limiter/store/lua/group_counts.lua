-- group_counts: read-only; groups' types and members in the live generation (usage reads,
-- the over-limit report).
-- KEYS[1] gen  KEYS[2] groups  KEYS[3] members (namespace; derived: each group's members)
-- ARGV[1..] group ids
-- Returns  per group: its type ("" when there is no such group), its members
use_generation(KEYS[1])
local out = {}
for i = 1, #ARGV do
  out[#out + 1] = redis.call("HGET", KEYS[2], ARGV[i]) or ""
  out[#out + 1] = count_of(KEYS[3], ARGV[i])
end
return out
