-- register_users: register accounts in request order, as many as the app's `users` limit takes.
-- KEYS[1]  users set
-- ARGV[1]  users limit (-1 = unlimited)
-- ARGV[2]  "1" when the users limit is in shadow mode
-- ARGV[3..] user ids, distinct
-- Returns  per user, two integers: outcome, count
--          outcome 1 added, 2 already registered, 70398 refused, -70398 added over a shadow limit;
--          count is the number of accounts after the add, or at the refusal.
local limit = tonumber(ARGV[1])
local shadow = ARGV[2] == "1"
local count = redis.call("SCARD", KEYS[1])
local out = {}
for i = 3, #ARGV do
  local user = ARGV[i]
  local outcome
  if redis.call("SISMEMBER", KEYS[1], user) == 1 then
    outcome = 2
  else
    outcome = verdict(count, limit, shadow, 70398)
    if outcome <= 0 then
      redis.call("SADD", KEYS[1], user)
      count = count + 1
      if outcome == 0 then
        outcome = 1
      end
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = count
end
return out
