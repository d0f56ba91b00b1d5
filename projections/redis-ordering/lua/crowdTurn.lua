-- One turn of a sold-out crowd answered from an API process's memory (src/api/soldOut.ts): the
-- turn's calls are counted as lookup.lua counts them, and the answer says whether the campaign
-- may still be answered from memory, with its close as it stands now.
-- KEYS: meta, the partition's step counts (seqs)
-- ARGV: the number of calls, the campaign's id
-- → {'GONE'} (no campaign here: nothing counted) | {'BUILDING'} (rebuilt or behind the writer:
--   nothing counted, as lookup.lua counts nothing then) | {'COUNTED', closedAt|''}
local m = redis.call('HMGET', KEYS[1], 'stock', 'building', 'closedAt', 'seq')
if m[2] then return {'BUILDING'} end
if not m[1] then return {'GONE'} end
local expected = redis.call('HGET', KEYS[2], ARGV[2]) or '0'
if expected ~= '0' and tonumber(m[4] or '0') < tonumber(expected) then return {'BUILDING'} end
redis.call('HINCRBY', KEYS[1], 'requests', ARGV[1])
return {'COUNTED', m[3] or ''}
