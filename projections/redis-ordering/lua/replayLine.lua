-- place.lua for a line whose entries were all decided before (a rebuild re-applies them): the same
-- line, without an answer per entry. Nobody waits on a replayed entry, and its ZRANK, ZSCORE and
-- reply were most of a rebuild's time in Redis. In log order an entry turned away by the terms was
-- not in line then, so ZADD NX of the admitted entries alone (first offset kept) ends with the
-- line place.lua would leave; every entry's pending mark goes, as there. Counts one step (`seq`,
-- see create.lua) and checks it first, as place.lua does.
-- KEYS: meta, line, pending
-- ARGV: expected seq ('' when the writer has none), n, then n pairs offset, user (admitted), then the
--       users turned away
-- → {'REBUILD'} when the campaign's projection is gone, {'BEHIND'} when it lost writes, else {seq}
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return {'REBUILD'} end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[1]) then return {'BEHIND'} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local admitted = tonumber(ARGV[2])
local last = 2 + 2 * admitted
-- in chunks: unpack's stack holds a few thousand values
local step = 2000
local pending = redis.call('EXISTS', KEYS[3]) == 1
for i = 3, last, step do
  local j = math.min(i + step - 1, last)
  redis.call('ZADD', KEYS[2], 'NX', unpack(ARGV, i, j))
  if pending then
    local users = {}
    for k = i + 1, j, 2 do users[#users + 1] = ARGV[k] end
    redis.call('HDEL', KEYS[3], unpack(users))
  end
end
if pending then
  for i = last + 1, #ARGV, step do
    redis.call('HDEL', KEYS[3], unpack(ARGV, i, math.min(i + step - 1, #ARGV)))
  end
end
return {seq}
