-- diff_chunk: read one chunk of a relation set, in order, and return the entries of it that
-- another relation set lacks (read-only; a reconcile's comparison, one chunk per call).
-- KEYS[1]  the sorted set walked
-- KEYS[2]  the sorted set compared with
-- ARGV[1]  lower bound: "-" for the start, else "(" .. the last entry of the previous chunk
-- ARGV[2]  chunk size (entries; at most a few thousand: they are passed to one ZMSCORE)
-- Returns  {entries read, the last entry read ("" when none), then each entry missing from KEYS[2]}
local entries = redis.call("ZRANGEBYLEX", KEYS[1], ARGV[1], "+", "LIMIT", 0, tonumber(ARGV[2]))
local out = {#entries, entries[#entries] or ""}
if #entries == 0 then
  return out
end
local scores = redis.call("ZMSCORE", KEYS[2], unpack(entries))
for i = 1, #entries do
  if not scores[i] then
    out[#out + 1] = entries[i]
  end
end
return out
