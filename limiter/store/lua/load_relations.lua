-- load_relations: write part of a reconcile's load into one generation's per-entity hashes,
-- many users and groups per call (one command, not an HSET each: a load touches most users).
-- KEYS[1..5] the namespaces friends, friended_by, members, joined, joined_free (derived: their
--            hashes of generation ARGV[1], lib.lua's entity)
-- ARGV[1]  the generation
-- ARGV[2..] one per user or group: its namespace's number (1..5), "\0", its id, then "\0" and
--          each field in turn (ids hold no control characters)
-- Returns  the number of fields added
GEN = ARGV[1]
local added = 0
for i = 2, #ARGV do
  local entry = ARGV[i]
  local first = string.find(entry, SEP, 1, true)
  local second = string.find(entry, SEP, first + 1, true)
  local namespace = KEYS[tonumber(string.sub(entry, 1, first - 1))]
  local key = entity(namespace, string.sub(entry, first + 1, second - 1))
  local args, start = {}, second + 1
  while start do
    local stop = string.find(entry, SEP, start, true)
    args[#args + 1] = string.sub(entry, start, (stop or 0) - 1)
    args[#args + 1] = ""
    start = stop and stop + 1
    if #args == 2 * CHUNK or not start then
      added = added + redis.call("HSET", key, unpack(args))
      args = {}
    end
  end
end
return added
