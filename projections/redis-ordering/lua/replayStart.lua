-- A replay job's first step on one partition (its keys share the partition's hash slot): once
-- per job, and only while no rebuild is under way (the sentinel is there and no progress key),
-- the sentinel goes, the job's marker says it is wiping, and so does the partition's `wiping` key
-- (its writer waits for the wipe to end before it rebuilds). The campaigns are wiped next, one
-- script each (rebuild.ts).
-- KEYS: built, rebuild progress, marker, wiping      ARGV: marker TTL in seconds, wiping TTL in ms
-- → the marker when this job started here before ('wiping' | 'done:<campaigns>'), 'BUSY', or 'STARTED'
local marker = redis.call('GET', KEYS[3])
if marker then return marker end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then return 'BUSY' end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], 'wiping', 'EX', ARGV[1])
redis.call('SET', KEYS[4], KEYS[3], 'PX', ARGV[2])
return 'STARTED'
