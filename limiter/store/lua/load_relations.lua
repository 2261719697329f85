-- load_relations: write part of a reconcile's load into one generation's per-entity hashes,
-- many users and groups per call (one command, not an HSET each: a load touches most users).
-- KEYS[1..5] the namespaces friends, friended_by, members, joined, joined_free (derived: their
--            hashes of generation ARGV[1], lib.lua's entity)
-- ARGV[1]  the generation
-- ARGV[2..] per user or group in turn: its namespace's number (1..5), its id, the number n of
--          its fields, then its n fields
-- Returns  the number of fields added
GEN = ARGV[1]
local added, i = 0, 2
while i <= #ARGV do
  local first = i + 3
  local last = i + 2 + tonumber(ARGV[i + 2])
  added = added + link_all(KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV, first, last)
  i = last + 1
end
return added
