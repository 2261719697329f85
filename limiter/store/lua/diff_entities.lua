-- diff_entities: compare users' or groups' relations in the live generation with a rebuild's
-- (read-only but for the rebuild's `seen` set; a reconcile's comparison, one page of ids per
-- call). An id already in `seen` is skipped, so the ids of several indexes can be given.
-- KEYS[1]  the app's gen  KEYS[2] the rebuild's gen  KEYS[3] the rebuild's seen set
-- KEYS[4..] the namespaces to compare (derived: each id's key in both generations)
-- ARGV[1]  a prefix for `seen` ("u:" users, "g:" groups: a user and a group may share an id)
-- ARGV[2..] ids
-- Returns  {per namespace: entries before, after, added, removed; then, for each id and
--           namespace whose count changes: namespace index (1 = KEYS[4]), id, change, count
--           after}
local live_gen = redis.call("GET", KEYS[1]) or "0"
local new_gen = redis.call("GET", KEYS[2])
local FIRST_NS = 4
local totals, changes = {}, {}
for k = FIRST_NS, #KEYS do
  totals[#totals + 1] = {0, 0, 0, 0}
end
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call("SADD", KEYS[3], ARGV[1] .. id) == 1 then
    for k = FIRST_NS, #KEYS do
      local live = redis.call("HKEYS", KEYS[k] .. ":" .. live_gen .. ":" .. id)
      local new = redis.call("HKEYS", KEYS[k] .. ":" .. new_gen .. ":" .. id)
      local total = totals[k - FIRST_NS + 1]
      local in_live = {}
      for _, other in ipairs(live) do
        in_live[other] = true
      end
      local common = 0
      for _, other in ipairs(new) do
        if in_live[other] then
          common = common + 1
        end
      end
      total[1] = total[1] + #live
      total[2] = total[2] + #new
      total[3] = total[3] + #new - common
      total[4] = total[4] + #live - common
      if #new ~= #live then
        changes[#changes + 1] = k - FIRST_NS + 1
        changes[#changes + 1] = id
        changes[#changes + 1] = #new - #live
        changes[#changes + 1] = #new
      end
    end
  end
end
local out = {}
for _, total in ipairs(totals) do
  for j = 1, 4 do
    out[#out + 1] = total[j]
  end
end
for _, value in ipairs(changes) do
  out[#out + 1] = value
end
return out
