-- The API's gate for `enter`, in one round trip over one campaign's keys (one hash slot): counts
-- the request, then returns what the decision needs. The rules themselves live in src/domain
-- (admit); this only reads, and takes the user's append claim when a place may still be left, so
-- a new entrant needs no second round trip.
-- KEYS: meta, line, pending, claim[, seqs]
-- ARGV: userId, claimToken, claimTtlMs, count ('0' when the same call asks again: it is counted once),
--       the writer's step count of the campaign ('0' when unknown): a campaign below it lost writes
--       (a failover) and answers as one being rebuilt.
--       With the partition's step counts as KEYS[5] (one Redis: on a cluster they are another
--       slot's), ARGV[5] is the campaign's id and the count is read here, in the same call: read
--       at once with the campaign, it cannot be older than what the campaign shows.
--       ARGV[6]: '1' when the call carries a proof-of-work solution. A campaign that asks for one
--       gives no claim to a call without one: it is refused (CHALLENGE_REQUIRED), with no second
--       round trip to let the claim go.
-- → {'NOMETA'} (not there: unknown, or not rebuilt yet; gate.ts asks the partition) | {'BUILDING'}
--   | {'PLACED', score, rank, stock, partition} | {'PENDING', ticket, stock}
--   | {'NEW', stock, opensAt, closesAt, closedAt|'', taken, partition, claimed (1|0), challengeMode|'', challengeDifficulty|''}
local m = redis.call('HMGET', KEYS[1], 'stock', 'opensAt', 'closesAt', 'closedAt', 'building', 'partition', 'challengeMode', 'challengeDifficulty')
-- `building` without stock is the mark a replay leaves on a campaign it wiped
if m[5] then return {'BUILDING'} end
if not m[1] then return {'NOMETA'} end
local expected = ARGV[5]
if KEYS[5] then expected = redis.call('HGET', KEYS[5], ARGV[5]) or '0' end
if expected ~= '0' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(expected) then return {'BUILDING'} end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[1], 'requests', 1) end
local user = ARGV[1]
local score = redis.call('ZSCORE', KEYS[2], user)
if score then return {'PLACED', score, redis.call('ZRANK', KEYS[2], user), m[1], m[6]} end
local pending = redis.call('HGET', KEYS[3], user)
if pending then return {'PENDING', pending, m[1]} end
local taken = redis.call('ZCARD', KEYS[2])
local claimed = 0
local mode = m[7] or ''
if taken < tonumber(m[1]) and (mode ~= 'POW' or ARGV[6] == '1') and redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', ARGV[3]) then claimed = 1 end
return {'NEW', m[1], m[2], m[3], m[4] or '', taken, m[6], claimed, mode, m[8] or ''}
