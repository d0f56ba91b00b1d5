-- After the append, for the entries of one campaign appended together: each user's ticket is
-- pending (a second click finds it), and the user's append claim is let go.
-- Once the line may be full (its size has reached the stock, or the campaign is being rebuilt),
-- the users are also announced on the campaign's change channel: an API process that answers a
-- sold-out crowd from memory (src/api/soldOut.ts) learns of every entrant marked after it
-- subscribed, in the order Redis ran the marks.
-- KEYS: pending, meta, line, then each user's claim (one campaign's keys: one hash slot)
-- ARGV: the change channel, '1' when it is sharded (a cluster), the campaign's id,
--       then user, ticket of each, in the order of the claims
-- → the number of tickets marked (a ticket already pending for its user is kept)
local marked = 0
local users = {}
for i = 4, #KEYS do
  local user = ARGV[2 * i - 4]
  marked = marked + redis.call('HSETNX', KEYS[1], user, ARGV[2 * i - 3])
  redis.call('DEL', KEYS[i])
  users[#users + 1] = user
end
local m = redis.call('HMGET', KEYS[2], 'stock', 'building')
if m[2] or not m[1] or redis.call('ZCARD', KEYS[3]) >= tonumber(m[1]) then
  local t = redis.call('TIME')
  local body = cjson.encode({campaignId = ARGV[3], users = users, at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)})
  redis.call(ARGV[2] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[1], body)
end
return marked
