-- A replay job's wipe of one campaign (one hash slot): what the writer rebuilds from the log goes
-- (meta, line, winners, gifticons), what the API wrote beside it stays (pending tickets, claims),
-- and the API's request counter is carried meanwhile. The meta is left as the mark {building: 1},
-- so readers answer UNAVAILABLE, not "no such campaign", until the writer has re-created it.
-- A campaign with nothing here is left alone (the rebuild brings it back, if it is in the log).
-- KEYS: meta, line, won, gifts, carry, codes, code hashes, chunks (INVENTORY, loadCodes.lua), parked issuances (PROVIDER)
-- → 1 when wiped, 0 when there was nothing
if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) == 0 then return 0 end
local requests = redis.call('HGET', KEYS[1], 'requests')
if requests then redis.call('INCRBY', KEYS[5], requests) end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
redis.call('HSET', KEYS[1], 'building', '1')
return 1
