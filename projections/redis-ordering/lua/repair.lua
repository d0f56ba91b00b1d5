-- A campaign found behind what its writer wrote (Redis lost its last writes): readers answer
-- UNAVAILABLE (`building`) until the writer's rebuild has replayed it from the log.
-- KEYS: meta      → 1 when marked, 0 when there is no campaign
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'building', '1')
return 1
