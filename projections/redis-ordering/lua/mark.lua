-- After the append, for the entries of one campaign appended together: each user's ticket is
-- pending (a second click finds it), and the user's append claim is let go.
-- KEYS: pending, then each user's claim (one campaign's keys: one hash slot)
-- ARGV: user, ticket of each, in the order of the claims
-- → the number of tickets marked (a ticket already pending for its user is kept)
local marked = 0
for i = 2, #KEYS do
  marked = marked + redis.call('HSETNX', KEYS[1], ARGV[2 * i - 3], ARGV[2 * i - 2])
  redis.call('DEL', KEYS[i])
end
return marked
