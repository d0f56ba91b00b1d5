-- One more socket for a user, across every API process, if fewer than the most are open.
-- KEYS[1]: the user's sockets (ZSET socket id -> lease end, ms)
-- ARGV: socket id, now (ms), lease (ms), most
-- Leases a process stopped renewing (it died) end by themselves, so a crash frees its places.
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
