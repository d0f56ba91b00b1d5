-- The single writer's ordering step for one campaign and one fetched batch (hot path: one call per
-- campaign per batch, not per entry): src/domain's `decideEntry`, done atomically where the line
-- is. A user already in line keeps their place, whatever the terms say now; anyone else is turned
-- away by the terms' verdict the writer judged (`judgeEntry`), or takes a place: ZADD NX with the
-- log offset as score keeps a user's first place, and the place is the rank among distinct users.
-- Idempotent: the same offsets give the same answers (a user is in line from their first offset
-- on), so a writer that runs a batch again after a crash decides and tells the same way. test/integration/ordering-lua.int.spec.ts holds this to the domain.
-- Counts one step of the writer (`seq`, see create.lua) and checks it first: a campaign behind what
-- the writer wrote lost writes (a failover), and nothing is placed on it.
-- KEYS: meta, line, pending
-- ARGV: expected seq ('' when the writer has none), offset1, user1, verdict1, offset2, …  (verdict: '' or a rejection)
-- → {'REBUILD'} when the campaign's projection is gone (Redis was flushed), {'BEHIND'} when it lost
--   writes, else the campaign's seq after this step, then per entry
--   rank (0-based), firstOffset  — or  -1, rejection  for an entry turned away
-- a meta without its stock is a remnant, not a campaign: the projection was flushed under us
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return {'REBUILD'} end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[1]) then return {'BEHIND'} end
local out = {redis.call('HINCRBY', KEYS[1], 'seq', 1)}
for i = 2, #ARGV, 3 do
  local offset, user, verdict = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('HDEL', KEYS[3], user)
  local score = redis.call('ZSCORE', KEYS[2], user)
  -- in line at this point of the log: a batch run again meets entries older than the user's place
  local inLine = score and tonumber(score) <= tonumber(offset)
  if not inLine and verdict ~= '' then
    out[#out + 1] = -1
    out[#out + 1] = verdict
  else
    if not score then redis.call('ZADD', KEYS[2], 'NX', offset, user) end
    out[#out + 1] = redis.call('ZRANK', KEYS[2], user)
    out[#out + 1] = redis.call('ZSCORE', KEYS[2], user)
  end
end
return out
