-- The decider's ordering step for one campaign and one fetched batch (hot path: one call per
-- campaign per batch, not per entry). ZADD NX with the log offset as score keeps a user's first
-- place; the place is the rank among distinct users. Idempotent: the same offsets give the same
-- places, so a decider that restarts mid-batch decides the same way.
-- KEYS: meta, line, pending      ARGV: offset1, user1, offset2, user2, …
-- → {'REBUILD'} when the campaign's projection is gone (Redis was flushed), else
--   {rank1, firstOffset1, rank2, firstOffset2, …} (rank 0-based)
-- a meta without its stock is a remnant, not a campaign: the projection was flushed under us
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return {'REBUILD'} end
local out = {}
for i = 1, #ARGV, 2 do
  local offset, user = ARGV[i], ARGV[i + 1]
  redis.call('ZADD', KEYS[2], 'NX', offset, user)
  redis.call('HDEL', KEYS[3], user)
  out[#out + 1] = redis.call('ZRANK', KEYS[2], user)
  out[#out + 1] = redis.call('ZSCORE', KEYS[2], user)
end
return out
