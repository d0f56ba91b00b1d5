-- The end of a rebuild, for one campaign it re-created: the campaign is complete again.
-- KEYS: meta      → 1 (its `building` flag cleared), or 0 when the campaign was lost meanwhile (a
-- flush, a replay's wipe): then the rebuild is not complete and starts over
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'building')
return 1
