-- drop_entities: delete one generation's relation keys of one page of an index's ids (a
-- reconcile deleting a generation it replaced, or one a stopped reconcile left).
-- KEYS[1]  the index to page: a set of ids, or a hash whose fields are the ids
-- KEYS[2..] the namespaces whose key of each id is deleted (derived: lib.lua's entity in
--           generation ARGV[2])
-- ARGV[1]  flags: the index is a hash
-- ARGV[2]  the generation  ARGV[3] the page's cursor  ARGV[4] ids per page
-- Returns  the next cursor ("0": done)
GEN = ARGV[2]
local cursor, ids = scan_page(KEYS[1], flag(1), ARGV[3], ARGV[4])
local names = {}
for _, id in ipairs(ids) do
  for k = 2, #KEYS do
    names[#names + 1] = entity(KEYS[k], id)
    if #names == CHUNK then
      redis.call("UNLINK", unpack(names))
      names = {}
    end
  end
end
if #names > 0 then
  redis.call("UNLINK", unpack(names))
end
return cursor
