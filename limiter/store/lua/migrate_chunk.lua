-- migrate_chunk: move up to a chunk of one relation of an app from the layout of limiter 0.x
-- (one app-wide sorted set per relation, entries "a\0b", all scores 0) into the per-entity
-- hashes of the live generation; each entry is removed from the sorted set as it is moved,
-- so a stopped migration resumes where it was and a second run finds nothing to do.
-- KEYS[1]  the relation's namespace, which is also the old sorted set's key
-- KEYS[2]  users  KEYS[3] strays  KEYS[4] gen (derived: each subject's key in the namespace)
-- ARGV[1]  flags: 1 the subjects are users (index them: lib.lua's index_user)
-- ARGV[2]  entries per call
-- Returns  {entries moved, entries left (0: done)}; {0, 0} when KEYS[1] is not a sorted set
--          (nothing of the old layout: already migrated, or never written by 0.x)
if redis.call("TYPE", KEYS[1])["ok"] ~= "zset" then
  return {0, 0}
end
use_generation(KEYS[4])
local users = flag(1)
local entries = redis.call("ZRANGE", KEYS[1], 0, tonumber(ARGV[2]) - 1)
local seen = {}
for _, entry in ipairs(entries) do
  local at = string.find(entry, SEP, 1, true)
  if at then
    local subject, other = string.sub(entry, 1, at - 1), string.sub(entry, at + 1)
    link(KEYS[1], subject, other)
    if users and not seen[subject] then
      seen[subject] = true
      index_user(KEYS[2], KEYS[3], subject)
    end
  end
end
for first = 1, #entries, CHUNK do
  redis.call("ZREM", KEYS[1], unpack(entries, first, math.min(first + CHUNK - 1, #entries)))
end
return {#entries, redis.call("ZCARD", KEYS[1])}
