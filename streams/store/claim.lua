-- Take a partition: a compare-and-set on its fence (see streams/store/fence.py for why).
-- KEYS[1] the partition's meta hash.
-- ARGV[1] the fence the claimer expects to supersede ('' where it expects none: never claimed)
-- ARGV[2] the new owner id
-- ARGV[3] the ordinal counter's field; ARGV[4], ARGV[5] the format field and the value a partition never
--         committed gets (its day counters kept per week, streams/store/weeks.py)
-- Returns {'STALE', <current fence or ''>} and writes nothing if the fence is not the expected one;
-- else {<new fence>, offset, watermark, seq, ordinals, sweeping} (nil where absent; sweeping: the clock of a
-- sweep whose transitions an owner published and did not commit, or the cleared value: streams/worker/sweep_mark.py;
-- `swept`, the mark of the release before, which never cleared it, is not read).
local meta = KEYS[1]
local fence = redis.call('HGET', meta, 'fence')
if (fence or '') ~= ARGV[1] then
  return {'STALE', fence or ''}
end
fence = redis.call('HINCRBY', meta, 'fence', 1)
redis.call('HSET', meta, 'owner', ARGV[2])
local row = redis.call('HMGET', meta, 'offset', 'watermark', 'seq', ARGV[3], ARGV[4], 'sweeping')
if not row[1] and not row[5] then
  redis.call('HSET', meta, ARGV[4], ARGV[5])
end
return {fence, row[1], row[2], row[3], row[4], row[6]}
