-- After the writer's committed decisions (winners, gifticons) were set on a campaign: one step of
-- the writer (`seq`, see create.lua), last, so a lost tail that took a decision took this too.
-- KEYS: meta      ARGV: expected seq ('' when the writer has none)
-- → the campaign's seq after this step, 0 when there is no campaign, -1 (nothing done) when it is behind
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[1]) then return -1 end
return redis.call('HINCRBY', KEYS[1], 'seq', 1)
