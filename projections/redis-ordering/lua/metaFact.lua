-- A fact about a campaign (first entry, sold out, closed), set once and kept only where the
-- campaign is: after a flush an HSETNX alone would recreate a meta without its stock. Counts one
-- step of the writer (`seq`, see create.lua).
-- KEYS: meta      ARGV: expected seq ('' when the writer has none), field, value
-- → the campaign's seq after this step, 0 when there is no campaign, -1 (nothing done) when it is behind
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[1]) then return -1 end
redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
return redis.call('HINCRBY', KEYS[1], 'seq', 1)
