-- CampaignCreated onto the meta. A campaign is created once: a second CampaignCreated with the
-- same id changes nothing but the campaign's step count. Remnant fields of a meta without stock
-- (written after a flush, or the stub a replay leaves) are dropped first.
-- `seq` counts the single writer's steps on the campaign (every script here that changes it adds
-- one): a writer that expects more than Redis holds finds the writes Redis lost (a failover).
-- KEYS: meta      ARGV: expected seq ('' when the writer has none), field1, value1, field2, …
-- → the campaign's seq after this step, or -1 (nothing done) when it is behind the expected one
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if redis.call('HEXISTS', KEYS[1], 'stock') == 1 then
  if ARGV[1] ~= '' and seq < tonumber(ARGV[1]) then return -1 end
  return redis.call('HINCRBY', KEYS[1], 'seq', 1)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('HSET', KEYS[1], 'seq', 1)
return 1
