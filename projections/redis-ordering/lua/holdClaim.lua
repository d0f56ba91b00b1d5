-- Keeps a user's append claim alive while its append is in flight: an append may outlast the
-- claim's TTL (a broker failover: 15 s seen), and a claim that expired under it lets a second click
-- of the same user append again. Only the request that holds the claim extends it.
-- KEYS: claim
-- ARGV: claimToken, claimTtlMs
-- → 1 when extended, 0 when the claim is no longer this request's
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
