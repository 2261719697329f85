-- diff_chunk: compare one chunk of a live relation set with its rebuilt one (read-only; a
-- reconcile's comparison, one chunk per call). Both sets are read in order from the same lower
-- bound; the chunk ends at the smaller of the two last entries read, so each entry up to it is
-- compared with the other set's entries of the same range in a Lua table. One pass over each
-- set, and no lookup in the big sets' hash tables (ZMSCORE on a set of a million entries cost
-- several times the ranges, cache misses all).
-- KEYS[1]  the live sorted set
-- KEYS[2]  the rebuilt sorted set
-- ARGV[1]  lower bound: "-" for the start, else "(" .. the upper bound the previous call returned
-- ARGV[2]  chunk size (entries read from each set)
-- Returns  {1 when there is more (else 0), this chunk's upper bound ("" when done),
--           entries added (in KEYS[2] only), entries removed (in KEYS[1] only),
--           then subject, change, subject, change, ... for each subject (the part of an entry
--           before "\0") whose count this chunk changes}
local low, size = ARGV[1], tonumber(ARGV[2])
local live = redis.call("ZRANGEBYLEX", KEYS[1], low, "+", "LIMIT", 0, size)
local new = redis.call("ZRANGEBYLEX", KEYS[2], low, "+", "LIMIT", 0, size)
local live_count, new_count, upper = #live, #new, nil
-- A set that returned a full chunk may hold more: compare only up to the smaller last entry
-- (ZLEXCOUNT compares as Redis orders entries, bytewise, whatever the server's locale).
if live_count == size and new_count == size then
  local live_upto = redis.call("ZLEXCOUNT", KEYS[1], low, "[" .. new[size])
  if live_upto >= size then
    upper = live[size]
    new_count = redis.call("ZLEXCOUNT", KEYS[2], low, "[" .. upper)
  else
    upper, live_count = new[size], live_upto
  end
elseif live_count == size then
  upper = live[size]
  new_count = redis.call("ZLEXCOUNT", KEYS[2], low, "[" .. upper)
elseif new_count == size then
  upper = new[size]
  live_count = redis.call("ZLEXCOUNT", KEYS[1], low, "[" .. upper)
end

local only_live = {}
for i = 1, live_count do
  only_live[live[i]] = true
end
local changes, subjects = {}, {}
local function change(entry, by)
  local subject = string.sub(entry, 1, string.find(entry, "\0", 1, true) - 1)
  if changes[subject] == nil then
    changes[subject] = 0
    subjects[#subjects + 1] = subject
  end
  changes[subject] = changes[subject] + by
end
local added, removed = 0, 0
for i = 1, new_count do
  local entry = new[i]
  if only_live[entry] then
    only_live[entry] = false
  else
    added = added + 1
    change(entry, 1)
  end
end
for i = 1, live_count do
  if only_live[live[i]] then
    removed = removed + 1
    change(live[i], -1)
  end
end

local out = {upper and 1 or 0, upper or "", added, removed}
for _, subject in ipairs(subjects) do
  if changes[subject] ~= 0 then
    out[#out + 1] = subject
    out[#out + 1] = changes[subject]
  end
end
return out
