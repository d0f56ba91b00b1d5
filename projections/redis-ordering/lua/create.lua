-- CampaignCreated onto the meta. A campaign is created once: a second CampaignCreated with the
-- same id changes nothing. Remnant fields of a meta without stock (written after a flush, or the
-- stub a replay leaves) are dropped first.
-- KEYS: meta      ARGV: field1, value1, field2, value2, …      → 1 when created, else 0
if redis.call('HEXISTS', KEYS[1], 'stock') == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
