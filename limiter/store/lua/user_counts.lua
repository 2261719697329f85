-- user_counts: read-only; users' counts in the live generation (usage reads, the over-limit
-- report).
-- KEYS[1] gen  KEYS[2] users  KEYS[3] friends  KEYS[4] joined (namespaces; derived: each
--          user's friends and joined)
-- ARGV[1..] user ids
-- Returns  per user, three integers: 1 if registered (else 0), friends, counted groups
use_generation(KEYS[1])
local out = {}
for i = 1, #ARGV do
  out[#out + 1] = redis.call("SISMEMBER", KEYS[2], ARGV[i])
  out[#out + 1] = count_of(KEYS[3], ARGV[i])
  out[#out + 1] = count_of(KEYS[4], ARGV[i])
end
return out
