-- A replay job's one atomic step per partition. Deleting the built sentinel together with the
-- campaigns' keys means no reader ever sees a campaign gone while the partition counts as built
-- (that would read as "no such campaign"): until the writer has rebuilt it, the API answers
-- UNAVAILABLE. It runs only when no rebuild is under way (the sentinel is there and no progress
-- key), so it never cuts into a rebuild; and it runs once per job and partition (the marker).
-- KEYS: built, rebuild progress, marker, then per campaign: meta, line, won, gifts, carry
-- ARGV: marker TTL in seconds      → 'DONE' | 'BUSY' | 'DELETED'
if redis.call('EXISTS', KEYS[3]) == 1 then return 'DONE' end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then return 'BUSY' end
local campaigns = 0
for i = 4, #KEYS, 5 do
  local requests = redis.call('HGET', KEYS[i], 'requests')
  if requests then redis.call('INCRBY', KEYS[i + 4], requests) end
  redis.call('UNLINK', KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[i + 3])
  campaigns = campaigns + 1
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], campaigns, 'EX', ARGV[1])
return 'DELETED'
