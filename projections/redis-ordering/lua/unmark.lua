-- After a rebuild that did not bring a campaign back (a bounded rebuild leaves out campaigns closed
-- past retention), the `building` mark a replay's wipe left on it goes, so readers fall back to the
-- read model instead of answering UNAVAILABLE for good. A campaign the rebuild re-created (it has
-- its stock) is left alone.
-- KEYS: meta      → 1 when the mark went, else 0
if redis.call('HEXISTS', KEYS[1], 'stock') == 1 or redis.call('HEXISTS', KEYS[1], 'building') == 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1
