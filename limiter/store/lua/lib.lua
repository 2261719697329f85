-- Helpers shared by every limiter script; prepended to each script when it is registered.
local SEP = "\0"

-- The yes/no inputs of a script: ARGV[1] holds one "0"/"1" character each, in the order its
-- header lists them (limiter/store/scripts.py builds them with `flags`).
local function flag(i)
  return string.sub(ARGV[1], i, i) == "1"
end

-- Relations: one hash per user or group, "<namespace>:<generation>:<id>" (field: the other
-- id, value ""); the namespaces come in KEYS, the generation from the app's `gen` key, read
-- once by use_generation(KEYS[i]) before any relation is touched. Every derived key shares
-- the namespace's hash tag, so the script's slot.
local GEN = nil

local function use_generation(key)
  GEN = redis.call("GET", key) or "0"
end

local function entity(namespace, id)
  return namespace .. ":" .. GEN .. ":" .. id
end

local function count_of(namespace, id)
  return redis.call("HLEN", entity(namespace, id))
end

-- The other ends of every relation of id, e.g. the groups of a user.
local function related(namespace, id)
  return redis.call("HKEYS", entity(namespace, id))
end

local function has(namespace, a, b)
  return redis.call("HEXISTS", entity(namespace, a), b) == 1
end

local function link(namespace, a, b)
  redis.call("HSET", entity(namespace, a), b, "")
end

local function unlink(namespace, a, b)
  return redis.call("HDEL", entity(namespace, a), b)
end

-- Many fields per command: every redis.call has a fixed cost, so a big group's members go
-- CHUNK at a time (well inside unpack's limit on values).
local CHUNK = 1000

-- Link a to each of `others` (or to others[first..last]); the number of links added.
local function link_all(namespace, a, others, first, last)
  local key, args, n, added = entity(namespace, a), {}, 0, 0
  first, last = first or 1, last or #others
  for i = first, last do
    args[n + 1] = others[i]
    args[n + 2] = ""
    n = n + 2
    if n == 2 * CHUNK or i == last then
      added = added + redis.call("HSET", key, unpack(args, 1, n))
      n = 0
    end
  end
  return added
end

-- One page of the ids of a set, or of a hash's fields (hashed): the next cursor ("0" at
-- the end) and the ids (an id may come twice while the set or hash is resized).
local function scan_page(key, hashed, cursor, count)
  if not hashed then
    local page = redis.call("SSCAN", key, cursor, "COUNT", count)
    return page[1], page[2]
  end
  local page, ids = redis.call("HSCAN", key, cursor, "COUNT", count), {}
  for i = 1, #page[2], 2 do
    ids[#ids + 1] = page[2][i]
  end
  return page[1], ids
end

-- Accounts first: a script told to require registration (one of its flags) gives an id that
-- is not a registered account the outcome NOT_REGISTERED (a refusal with no limit) and relates
-- it to nothing (users: the app's set of accounts).
local NOT_REGISTERED = 3

local function registered(users, id)
  return redis.call("SISMEMBER", users, id) == 1
end

-- Keep the index of ids that hold relations: an id that is not a registered account goes
-- into `strays` (users, strays: the app's sets). Needed only when registration is not
-- required: otherwise every id being related is an account (one released later, by
-- unregister_users, goes into strays there).
local function index_user(users, strays, user)
  if not registered(users, user) then
    redis.call("SADD", strays, user)
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
