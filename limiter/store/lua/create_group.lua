-- create_group: create a group with its owner and initial members, all or nothing.
-- KEYS[1] groups  KEYS[2] members  KEYS[3] joined  KEYS[4] joined_free (namespaces)
-- KEYS[5] av_rooms  KEYS[6] this month's metering hash (its peak of live groups is kept here)
-- KEYS[7] users  KEYS[8] strays  KEYS[9] gen (derived: the group's members, each member's
--          joined or joined_free)
-- ARGV[1]  flags: 1 this type counts toward groups_per_user; 2 this type is an AV chat room
--          (counts toward av_chatrooms); 3, 4, 5 group_members, av_chatrooms, groups_per_user
--          are in shadow mode; 6 accounts first: the owner and each member must be registered
--          accounts
-- ARGV[2]  group id
-- ARGV[3]  canonical group type
-- ARGV[4]  the group's group_members limit (-1 = unlimited)
-- ARGV[5]  the app's av_chatrooms limit (-1 = unlimited)
-- ARGV[6]  today, ARGV[7] the month's first day (YYYY-MM-DD), ARGV[8] metering retention (s)
-- ARGV[9..] pairs: member id, that member's groups_per_user limit; the owner first; distinct
-- Returns  {status, subject, count, then shadowed triples (code, subject, count)...}
--          status 0 created (count = members), 10021 the id is taken, 3 `subject` is not a
--          registered account (count 0), followed by a triple (3, id, 0) for every other
--          one that is not either, 10036 too many AV
--          chat rooms (count = rooms), 10038 too many initial members (count = asked),
--          10037 `subject` has joined too many groups (count = its groups), followed by a
--          triple (10037, user, count) for every other member that is also full.
local FIRST = 9 -- the owner, then the other members
use_generation(KEYS[9])
local group = ARGV[2]
local group_type = ARGV[3]
local counted = flag(1)
local is_av = flag(2)
local member_limit = tonumber(ARGV[4])
local av_limit = tonumber(ARGV[5])
local shadow_members = flag(3)
local shadow_av = flag(4)
local shadow_groups = flag(5)
local required = flag(6)

if redis.call("HEXISTS", KEYS[1], group) == 1 then
  return {10021, group, 0}
end
if required then
  local strangers = nil
  for i = FIRST, #ARGV, 2 do
    if not registered(KEYS[7], ARGV[i]) then
      if strangers then
        strangers[#strangers + 1] = NOT_REGISTERED
        strangers[#strangers + 1] = ARGV[i]
        strangers[#strangers + 1] = 0
      else
        strangers = {NOT_REGISTERED, ARGV[i], 0}
      end
    end
  end
  if strangers then
    return strangers
  end
end
local shadowed = {}
local function check(outcome, subject, count)
  if outcome > 0 then
    return {outcome, subject, count}
  end
  if outcome < 0 then
    shadowed[#shadowed + 1] = -outcome
    shadowed[#shadowed + 1] = subject
    shadowed[#shadowed + 1] = count
  end
  return nil
end

if is_av then
  local rooms = redis.call("SCARD", KEYS[5])
  local refused = check(verdict(rooms, av_limit, shadow_av, 10036), group, rooms)
  if refused then
    return refused
  end
end
local size = (#ARGV - FIRST + 1) / 2
local refused = check(verdict(size - 1, member_limit, shadow_members, 10038), group, size)
if refused then
  return refused
end
if counted then
  for i = FIRST, #ARGV, 2 do
    local joined = count_of(KEYS[3], ARGV[i])
    local full = check(verdict(joined, tonumber(ARGV[i + 1]), shadow_groups, 10037), ARGV[i], joined)
    if full and refused then
      refused[#refused + 1] = 10037
      refused[#refused + 1] = ARGV[i]
      refused[#refused + 1] = joined
    elseif full then
      refused = full
    end
  end
  if refused then
    return refused
  end
end

redis.call("HSET", KEYS[1], group, group_type)
local groups = redis.call("HLEN", KEYS[1])
track_groups(KEYS[6], groups - 1, groups, ARGV[6], ARGV[7], ARGV[8])
if is_av then
  redis.call("SADD", KEYS[5], group)
end
local people = {}
local joined_key = counted and KEYS[3] or KEYS[4]
for i = FIRST, #ARGV, 2 do
  people[#people + 1] = ARGV[i]
  link(joined_key, ARGV[i], group)
  if not required then
    index_user(KEYS[7], KEYS[8], ARGV[i])
  end
end
link_all(KEYS[2], group, people)
local out = {0, group, size}
for i = 1, #shadowed do
  out[#out + 1] = shadowed[i]
end
return out
