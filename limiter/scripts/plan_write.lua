-- plan_write: set or delete one field of an app's plan hash, optionally only if it still
-- holds what the caller read (a compare-and-set, so concurrent renewals do not lose one).
-- KEYS[1]  plan hash
-- ARGV[1]  field
-- ARGV[2]  "cas" to compare first, "any" to write unconditionally
-- ARGV[3]  with "cas": the expected current value, "" meaning the field must be absent
-- ARGV[4]  "set" or "del"
-- ARGV[5]  with "set": the new value
-- Returns  1 written (for "del": 1 if the field existed), 0 the field no longer held the
--          expected value (nothing written) or, for "del", did not exist
if ARGV[2] == "cas" then
  local current = redis.call("HGET", KEYS[1], ARGV[1])
  if (current or "") ~= ARGV[3] then
    return 0
  end
end
if ARGV[4] == "set" then
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[5])
  return 1
end
return redis.call("HDEL", KEYS[1], ARGV[1])
