-- Helpers shared by every limiter script; prepended to each script when it is registered.
-- Relations are entries "a\0b" of app-wide sorted sets (all scores 0); the entries of one
-- subject a are the lexical range [a\0, a\1), so counts are exact ZLEXCOUNTs.
local SEP = "\0"

-- The yes/no inputs of a script: ARGV[1] holds one "0"/"1" character each, in the order its
-- header lists them (limiter/store/scripts.py builds them with `flags`).
local function flag(i)
  return string.sub(ARGV[1], i, i) == "1"
end

-- The lexical range of subject id's entries: [id\0, id\1).
local function range_of(id)
  return "[" .. id .. SEP, "(" .. id .. "\1"
end

local function count_of(key, id)
  return redis.call("ZLEXCOUNT", key, range_of(id))
end

-- The other ends of every relation of id, e.g. the groups of a user.
local function related(key, id)
  local entries = redis.call("ZRANGEBYLEX", key, range_of(id))
  local start = #id + 2
  for i = 1, #entries do
    entries[i] = string.sub(entries[i], start)
  end
  return entries
end

local function has(key, a, b)
  return redis.call("ZSCORE", key, a .. SEP .. b) ~= false
end

local function link(key, a, b)
  redis.call("ZADD", key, 0, a .. SEP .. b)
end

local function unlink(key, a, b)
  return redis.call("ZREM", key, a .. SEP .. b)
end

-- Many entries per command: every redis.call has a fixed cost, so a big group's entries go
-- CHUNK at a time (well inside unpack's limit on values).
local CHUNK = 1000

-- ZADD (score 0) each of `entries`, "a\0b" strings.
local function link_all(key, entries)
  local args = {}
  for i = 1, #entries do
    args[#args + 1] = 0
    args[#args + 1] = entries[i]
    if #args == 2 * CHUNK or i == #entries then
      redis.call("ZADD", key, unpack(args))
      args = {}
    end
  end
end

-- ZREM each of `entries`.
local function unlink_all(key, entries)
  for first = 1, #entries, CHUNK do
    redis.call("ZREM", key, unpack(entries, first, math.min(first + CHUNK - 1, #entries)))
  end
end

-- The decision for adding one more to something holding `count` under `limit` (-1: none):
-- 0 allowed; `code` refused; -`code` over a shadow-mode limit (the addition goes ahead).
local function verdict(count, limit, shadow, code)
  if limit < 0 or count < limit then
    return 0
  end
  if shadow then
    return -code
  end
  return code
end

-- Keep the month's peak of live groups as the count changes from `before` to `after`.
-- The month's first change records `before` as groups_start (the count since the month
-- began: a month without changes takes the next changed month's groups_start) and starts
-- the peak there.
-- meter: the month's metering hash; day / first_day: "YYYY-MM-DD"; ttl: its retention (s).
local function track_groups(meter, before, after, day, first_day, ttl)
  local peak = tonumber(redis.call("HGET", meter, "peak_groups"))
  if peak == nil then
    redis.call("HSET", meter, "peak_groups", before, "peak_groups_day", first_day, "groups_start", before)
    peak = before
  end
  if after > peak then
    redis.call("HSET", meter, "peak_groups", after, "peak_groups_day", day)
  end
  redis.call("EXPIRE", meter, ttl)
end

-- Log a change in an app's audit list (newest first), keeping its `keep` latest entries.
-- entry: a JSON object (limiter/store/audit.py owns its fields).
local function audit(key, entry, keep)
  redis.call("LPUSH", key, entry)
  redis.call("LTRIM", key, 0, tonumber(keep) - 1)
end
