-- diff_entities: compare users' or groups' relations in the live generation with a rebuild's
-- (read-only but for the rebuild's `seen` set; a reconcile's comparison, one page of an
-- index's ids per call). An id already in `seen` is skipped, so several indexes can be paged.
-- KEYS[1]  the app's gen  KEYS[2] the rebuild's gen  KEYS[3] the rebuild's seen set
-- KEYS[4]  the index to page: a set of ids, or a hash whose fields are the ids
-- KEYS[5..] the namespaces to compare (derived: each id's key in both generations)
-- ARGV[1]  flags: the index is a hash; then one per namespace: compare its contents (else
--          only its counts)
-- ARGV[2]  a prefix for `seen` ("u:" users, "g:" groups: a user and a group may share an id)
-- ARGV[3]  the page's cursor  ARGV[4] ids per page (SSCAN's or HSCAN's COUNT)
-- Returns  {the next cursor ("0": done), then per namespace whose contents are compared:
--           entries before, after, added, removed; then, for each id and namespace whose
--           count changes: namespace index (1 = KEYS[5]), id, change, count after}
local live_gen = redis.call("GET", KEYS[1]) or "0"
local new_gen = redis.call("GET", KEYS[2])
local FIRST_NS = 5
local cursor, ids = scan_page(KEYS[4], flag(1), ARGV[3], ARGV[4])
local totals, changes = {}, {}
for k = FIRST_NS, #KEYS do
  totals[#totals + 1] = {0, 0, 0, 0}
end
for _, id in ipairs(ids) do
  if redis.call("SADD", KEYS[3], ARGV[2] .. id) == 1 then
    for k = FIRST_NS, #KEYS do
      local live_key = KEYS[k] .. ":" .. live_gen .. ":" .. id
      local new_key = KEYS[k] .. ":" .. new_gen .. ":" .. id
      local before = redis.call("HLEN", live_key)
      local after, common = 0, 0
      -- with nothing live there is nothing in common: the count is enough
      if before == 0 or not flag(k - FIRST_NS + 2) then
        after = redis.call("HLEN", new_key)
      else
        local in_live = {}
        for _, other in ipairs(redis.call("HKEYS", live_key)) do
          in_live[other] = true
        end
        local new = redis.call("HKEYS", new_key)
        after = #new
        for _, other in ipairs(new) do
          if in_live[other] then
            common = common + 1
          end
        end
      end
      local total = totals[k - FIRST_NS + 1]
      total[1] = total[1] + before
      total[2] = total[2] + after
      total[3] = total[3] + after - common
      total[4] = total[4] + before - common
      if after ~= before then
        changes[#changes + 1] = k - FIRST_NS + 1
        changes[#changes + 1] = id
        changes[#changes + 1] = after - before
        changes[#changes + 1] = after
      end
    end
  end
end
local out = {cursor}
for k, total in ipairs(totals) do
  if flag(k + 1) then
    for j = 1, 4 do
      out[#out + 1] = total[j]
    end
  end
end
for _, value in ipairs(changes) do
  out[#out + 1] = value
end
return out
