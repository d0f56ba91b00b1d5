-- A setting of a campaign that later events change (its proof-of-work mode and difficulty): set
-- as the event says, so the last event in log order holds, and kept only where the campaign is
-- (as metaFact.lua). Fields given an empty value are removed. Counts one step of the writer (`seq`,
-- see create.lua).
-- KEYS: meta      ARGV: expected seq ('' when the writer has none), field1, value1, field2, …
-- → the campaign's seq after this step, 0 when there is no campaign, -1 (nothing done) when it is behind
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[1]) then return -1 end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return redis.call('HINCRBY', KEYS[1], 'seq', 1)
