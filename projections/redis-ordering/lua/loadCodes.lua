-- A chunk of an INVENTORY campaign's codes (CodesLoaded) onto the projection: each code whose
-- keyed hash the campaign has not kept yet is appended, sealed, to its list of codes (load order:
-- the k-th goes to the k-th winner); the others are duplicates. A chunk applied again (a replay, a
-- rerun) changes nothing: its result is kept under its id. Counts one step of the writer (create.lua).
-- KEYS: meta, codes (list), hashes (set), chunks (hash chunk id → "loaded|i,j,…")
-- ARGV: expected seq ('' when the writer has none), chunk id, then hash, sealed code of each code
-- → the campaign's seq after this step, 0 when there is no campaign, -1 (nothing done) when it is behind
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[1]) then return -1 end
if redis.call('HEXISTS', KEYS[4], ARGV[2]) == 0 then
  local loaded = 0
  local dups = {}
  for i = 3, #ARGV, 2 do
    if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
      redis.call('RPUSH', KEYS[2], ARGV[i + 1])
      loaded = loaded + 1
    else
      dups[#dups + 1] = tostring((i - 3) / 2)
    end
  end
  redis.call('HSET', KEYS[4], ARGV[2], loaded .. '|' .. table.concat(dups, ','))
end
return redis.call('HINCRBY', KEYS[1], 'seq', 1)
