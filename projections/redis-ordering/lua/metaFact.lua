-- A fact about a campaign (first entry, sold out, closed), set once and kept only where the
-- campaign is: after a flush an HSETNX alone would recreate a meta without its stock.
-- KEYS: meta      ARGV: field, value      → 1 when set, else 0
if redis.call('HEXISTS', KEYS[1], 'stock') == 1 then return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) end
return 0
