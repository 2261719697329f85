-- add_friends: add peers to a user's friend list; both-way also adds the user to each peer's.
-- KEYS[1]  friends      ("a\0b": b is in a's list)
-- KEYS[2]  friended_by  ("b\0a": the reverse index)
-- ARGV[1]  flags: 1 both-way (else single-way: touches only the requester's list); 2 the
--          friends limit is in shadow mode; 3 all or nothing (if any peer would be refused,
--          add none)
-- ARGV[2]  the requesting user
-- ARGV[3]  the requester's friends limit (-1 = unlimited)
-- ARGV[4..] pairs: peer id, the peer's friends limit; peers distinct and not the user
-- Returns  per peer, four integers: outcome, sides added, count, peer count
--          outcome 1 added, 2 already, 30010 requester's list full, 30014 peer's list full,
--          -30010 / -30014 added over a shadow limit, 0 not attempted (all or nothing);
--          sides: bit 1 the requester's side, bit 2 the peer's side; count: the list size the
--          outcome speaks of (requester's, or the peer's for 30014), at the decision; peer count:
--          when both lists were over a shadow limit (outcome -30010), the peer's list size, so
--          its waived 30014 is reported too; else -1.
-- Decides every peer first, then writes: a peer's own list is touched by no other peer, so
-- only the requester's running count links the decisions.
local FIRST = 4 -- the first peer
local user = ARGV[2]
local both = flag(1)
local user_limit = tonumber(ARGV[3])
local shadow = flag(2)
local user_count = count_of(KEYS[1], user)
local stored_count = user_count
local decisions = {}
local refused = false
for i = FIRST, #ARGV, 2 do
  local peer = ARGV[i]
  local forward = has(KEYS[1], user, peer)
  local reverse = (not both) or has(KEYS[1], peer, user)
  local outcome, sides, count, also = 2, 0, user_count, -1
  if not (forward and reverse) then
    local mine, theirs, peer_count = 0, 0, 0
    if not forward then
      mine = verdict(user_count, user_limit, shadow, 30010)
    end
    if not reverse then
      peer_count = count_of(KEYS[1], peer)
      theirs = verdict(peer_count, tonumber(ARGV[i + 1]), shadow, 30014)
    end
    if mine > 0 then
      outcome = mine
    elseif theirs > 0 then
      outcome, count = theirs, peer_count
    else
      sides = (forward and 0 or 1) + (reverse and 0 or 2)
      outcome = 1
      if mine < 0 then
        outcome = mine
        if theirs < 0 then
          also = peer_count
        end
      elseif theirs < 0 then
        outcome, count = theirs, peer_count
      end
      if not forward then
        user_count = user_count + 1
      end
      if outcome == 1 then
        count = user_count
      end
    end
  end
  refused = refused or outcome > 2
  decisions[#decisions + 1] = {peer, outcome, sides, count, also}
end
local out = {}
local write = not (refused and flag(3))
for _, d in ipairs(decisions) do
  local peer, outcome, sides = d[1], d[2], d[3]
  if write then
    if sides % 2 == 1 then
      link(KEYS[1], user, peer)
      link(KEYS[2], peer, user)
    end
    if sides >= 2 then
      link(KEYS[1], peer, user)
      link(KEYS[2], user, peer)
    end
  elseif outcome == 1 or outcome < 0 then
    outcome, sides = 0, 0
  elseif outcome == 30010 then
    d[4] = stored_count -- nothing was written: the list holds what it held before the call
  end
  out[#out + 1] = outcome
  out[#out + 1] = sides
  out[#out + 1] = d[4]
  out[#out + 1] = d[5]
end
return out
