-- register_users: register accounts in request order, as many as the app's `users` limit takes.
-- KEYS[1]  users set  KEYS[2] strays (an account registered leaves it)
-- ARGV[1]  flags: 1 the users limit is in shadow mode; 2 all or nothing (if any account would
--          be refused, register none)
-- ARGV[2]  users limit (-1 = unlimited)
-- ARGV[3..] user ids, distinct
-- Returns  per user, two integers: outcome, count
--          outcome 1 added, 2 already registered, 70398 refused, -70398 added over a shadow limit,
--          0 not attempted (all or nothing, another one was refused);
--          count is the number of accounts after the add; for a refusal or a waived (shadow)
--          refusal, the number at the decision, before it.
local FIRST = 3 -- the first user id
local limit = tonumber(ARGV[2])
local shadow = flag(1)
local count = redis.call("SCARD", KEYS[1])
local known = {}
local fresh = 0
for i = FIRST, #ARGV do
  known[i] = redis.call("SISMEMBER", KEYS[1], ARGV[i]) == 1
  if not known[i] then
    fresh = fresh + 1
  end
end
local out = {}
if flag(2) and verdict(count + fresh - 1, limit, shadow, 70398) > 0 then
  for i = FIRST, #ARGV do
    out[#out + 1] = known[i] and 2 or 70398
    out[#out + 1] = count
  end
  return out
end
for i = FIRST, #ARGV do
  local outcome, at_decision = 2, count
  if not known[i] then
    outcome = verdict(count, limit, shadow, 70398)
    if outcome <= 0 then
      redis.call("SADD", KEYS[1], ARGV[i])
      redis.call("SREM", KEYS[2], ARGV[i])
      count = count + 1
      if outcome == 0 then
        outcome, at_decision = 1, count
      end
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = at_decision
end
return out
