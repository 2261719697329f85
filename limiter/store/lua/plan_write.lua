-- plan_write: set or delete one field of an app's plan hash, optionally only if it still
-- holds what the caller read (a compare-and-set, so concurrent renewals do not lose one),
-- and log the change in the app's bounded audit list in the same step.
-- KEYS[1]  plan hash
-- KEYS[2]  audit list (newest first)
-- KEYS[3]  purchase ledger (oldest first)
-- ARGV[1]  field
-- ARGV[2]  "cas" to compare first, "any" to write unconditionally
-- ARGV[3]  with "cas": the expected current value, "" meaning the field must be absent
-- ARGV[4]  "set" or "del"
-- ARGV[5]  with "set": the new value (JSON)
-- ARGV[6]  the audit entry's opening: a JSON object's fields without its closing brace;
--          the script appends "before" and "after" (the field's old and new JSON, or null)
-- ARGV[7]  how many audit entries to keep
-- ARGV[8]  a ledger entry (JSON) to append with the change, or "" for none
-- ARGV[9]  today (YYYY-MM-DD): an app's first ledger entry is preceded by a "baseline" entry
--          holding its edition and expansion fields as they were (set up before the ledger)
-- Returns  1 written (for "del": 1 if the field existed), 0 the field no longer held the
--          expected value (nothing written) or, for "del", did not exist
local current = redis.call("HGET", KEYS[1], ARGV[1])
if ARGV[2] == "cas" and (current or "") ~= ARGV[3] then
  return 0
end
if ARGV[8] ~= "" and redis.call("LLEN", KEYS[3]) == 0 then
  -- Field names are "edition" and "expansion:<hex id>", values JSON: safe to splice.
  local fields = {}
  local plan = redis.call("HGETALL", KEYS[1])
  for i = 1, #plan, 2 do
    if plan[i] == "edition" or string.sub(plan[i], 1, 10) == "expansion:" then
      fields[#fields + 1] = '"' .. plan[i] .. '":' .. plan[i + 1]
    end
  end
  if #fields > 0 then
    local baseline = '{"event":"baseline","on":"' .. ARGV[9] .. '","fields":{'
    redis.call("RPUSH", KEYS[3], baseline .. table.concat(fields, ",") .. "}}")
  end
end
local after = "null"
if ARGV[4] == "set" then
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[5])
  after = ARGV[5]
elseif redis.call("HDEL", KEYS[1], ARGV[1]) == 0 then
  return 0
end
audit(KEYS[2], ARGV[6] .. ',"before":' .. (current or "null") .. ',"after":' .. after .. "}", ARGV[7])
if ARGV[8] ~= "" then
  redis.call("RPUSH", KEYS[3], ARGV[8])
end
return 1
