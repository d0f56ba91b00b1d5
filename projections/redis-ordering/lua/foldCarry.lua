-- Folds the request count a replay carried back into the rebuilt campaign's meta, once (the carry
-- key goes in the same step).
-- KEYS: meta, carry      → the amount folded, 0 when none, -1 when the campaign is not rebuilt yet
local n = redis.call('GET', KEYS[2])
if not n then return 0 end
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 or redis.call('HEXISTS', KEYS[1], 'building') == 1 then return -1 end
redis.call('HINCRBY', KEYS[1], 'requests', n)
redis.call('DEL', KEYS[2])
return tonumber(n)
