-- A replay job's first step on one partition (its keys share the partition's hash slot): once
-- per job, and only while no rebuild is under way (the sentinel is there and no progress key),
-- the sentinel goes and the job's marker says it is wiping. The campaigns are wiped next, one
-- script each (rebuild.ts).
-- KEYS: built, rebuild progress, marker      ARGV: marker TTL in seconds
-- → the marker when this job started here before ('wiping' | 'done:<campaigns>'), 'BUSY', or 'STARTED'
local marker = redis.call('GET', KEYS[3])
if marker then return marker end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then return 'BUSY' end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], 'wiping', 'EX', ARGV[1])
return 'STARTED'
