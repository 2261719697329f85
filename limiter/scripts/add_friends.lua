-- add_friends: add peers to a user's friend list; both-way also adds the user to each peer's.
-- KEYS[1]  friends      ("a\0b": b is in a's list)
-- KEYS[2]  friended_by  ("b\0a": the reverse index)
-- ARGV[1]  the requesting user
-- ARGV[2]  "1" both-way, "0" single-way (touches only the requester's list)
-- ARGV[3]  the requester's friends limit (-1 = unlimited)
-- ARGV[4]  "1" when the friends limit is in shadow mode
-- ARGV[5..] pairs: peer id, the peer's friends limit; peers distinct and not the user
-- Returns  per peer, three integers: outcome, sides added, count
--          outcome 1 added, 2 already, 30010 requester's list full, 30014 peer's list full,
--          -30010 / -30014 added over a shadow limit; sides: bit 1 the requester's side,
--          bit 2 the peer's side; count: the list size the outcome speaks of (requester's,
--          or the peer's for 30014), at the refusal or after the add.
local user = ARGV[1]
local both = ARGV[2] == "1"
local user_limit = tonumber(ARGV[3])
local shadow = ARGV[4] == "1"
local user_count = count_of(KEYS[1], user)
local out = {}
for i = 5, #ARGV, 2 do
  local peer = ARGV[i]
  local forward = has(KEYS[1], user, peer)
  local reverse = (not both) or has(KEYS[1], peer, user)
  local outcome, sides, count = 2, 0, user_count
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
      if not forward then
        link(KEYS[1], user, peer)
        link(KEYS[2], peer, user)
        user_count = user_count + 1
        sides = sides + 1
      end
      if not reverse then
        link(KEYS[1], peer, user)
        link(KEYS[2], user, peer)
        sides = sides + 2
      end
      outcome, count = 1, user_count
      if mine < 0 then
        outcome, count = mine, user_count - 1
      elseif theirs < 0 then
        outcome, count = theirs, peer_count
      end
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = sides
  out[#out + 1] = count
end
return out
