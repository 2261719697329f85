-- add_members: add users to an existing group; the eligible ones all fit, or nobody is added.
-- KEYS[1] groups  KEYS[2] members  KEYS[3] joined  KEYS[4] joined_free
-- ARGV[1]  flags: 1, 2 group_members, groups_per_user are in shadow mode; 3 all or nothing
--          (if any user would be refused, add none)
-- ARGV[2]  group id
-- ARGV[3]  the group's own group_members limit if an override sets one, else "" (use the type's)
-- ARGV[4]  the group types, one argument: "\0<type>\0<its group_members limit>\0<1 if it
--          counts toward groups_per_user, else 0>" for each, then "\0" (one argument instead
--          of three per type: each argument costs the client and the server)
-- ARGV[5..] pairs: user id, that user's groups_per_user limit; distinct
-- Returns  {status, size, group type, then per user two integers: outcome, count}
--          status 0 done, 10010 no such group, 10014 the eligible users do not all fit
--          (nothing changed), -10014 they did not fit a shadow limit but were added,
--          10037 all or nothing and some user's groups are full (nothing changed);
--          size: members after the call (before it, on 10014);
--          outcome 1 added, 2 already a member, 10037 the user's groups are full, -10037 added
--          over a shadow limit, 0 not attempted (the call was refused); count: the user's
--          counted groups after the add, or at the decision for a refusal or a waiver.
local FIRST = 5 -- the first user
local group = ARGV[2]
local group_type = redis.call("HGET", KEYS[1], group)
if not group_type then
  return {10010, 0, ""}
end
local shadow_members = flag(1)
local shadow_groups = flag(2)
local all_or_nothing = flag(3)
local member_limit, counted = -1, false
local found = string.find(ARGV[4], SEP .. group_type .. SEP, 1, true)
if found then
  local limit, counts = string.match(ARGV[4], "^(-?%d+)%z([01])%z", found + #group_type + 2)
  member_limit, counted = tonumber(limit), counts == "1"
end
if ARGV[3] ~= "" then
  member_limit = tonumber(ARGV[3])
end
local joined_key = counted and KEYS[3] or KEYS[4]
local size = count_of(KEYS[2], group)
local outcomes, counts, eligible, refused = {}, {}, 0, false
for i = FIRST, #ARGV, 2 do
  local user = ARGV[i]
  local outcome, count = 2, 0
  if not has(KEYS[2], group, user) then
    outcome = 0
    if counted then
      count = count_of(KEYS[3], user)
      outcome = verdict(count, tonumber(ARGV[i + 1]), shadow_groups, 10037)
    end
    if outcome <= 0 then
      eligible = eligible + 1
      outcome = (outcome == 0) and 1 or outcome
    else
      refused = true
    end
  end
  outcomes[#outcomes + 1] = outcome
  counts[#counts + 1] = count
end
local status = 0
if refused and all_or_nothing then
  status = 10037
elseif eligible > 0 then
  status = verdict(size + eligible - 1, member_limit, shadow_members, 10014)
end
local out = {status, size, group_type}
if status > 0 then
  for n = 1, #outcomes do
    local outcome = outcomes[n]
    out[#out + 1] = (outcome == 10037) and outcome or 0
    out[#out + 1] = counts[n]
  end
  return out
end
for n = 1, #outcomes do
  local outcome = outcomes[n]
  if outcome == 1 or outcome < 0 then
    local user = ARGV[FIRST + 2 * (n - 1)]
    link(KEYS[2], group, user)
    link(joined_key, user, group)
    if counted and outcome == 1 then
      counts[n] = counts[n] + 1
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = counts[n]
end
out[2] = size + eligible
return out
