#!lua
-- Atomic, fenced commit of one partition's batch (all keys share the partition's hash tag).
-- KEYS[1] partition meta hash, KEYS[2] due index (each chunk's earliest due time), KEYS[3..] customer hashes
-- in write order, then the keys the index ops name (membership sets, KPI and flow hashes), then the chunk keys.
-- ARGV[1] '<fence token>:<commit sequence>[:<owner id>]' (the owner id tells two claims of one fence number
-- apart: after Redis lost a claim, the next one gets the same number), ARGV[2] offset or '', ARGV[3] watermark µs or '', ARGV[4] number of
-- customer writes, then per customer:
--   customer_id, kind ('S' set / 'D' delete), due µs or '', n_set, n_removed, set pairs..., removed names...
--   (the due part may start with '=': the client's word that the stored due time is already this one, as
--   its field diffs take the stored fields for what it last wrote; see "Due times" below)
-- or, packed (what the worker sends), ARGV[4] '<number of writes>:<number of parts>' and ARGV[5] all those
-- customer parts in one argument, a msgpack array of strs (the client encodes each argument separately,
-- ~1 µs each: one per batch instead of ~7 per customer).
-- then index ops until the end, each: name, key index (into KEYS), n_args, args...; or, packed, the name
-- followed by '*', key index, n_args, and one argument with the n_args args as a msgpack array of strs
--   SADD/SREM key members...          HINCRBY key field delta [field delta ...]
--   HSET key field value [field value ...]  (the erasure tombstones, streams/store/erasures.py; of the meta
--     hash only `sweeping`, the sweep mark: streams/worker/sweep_mark.py)
--   BITS meta entries...  membership (streams/store/membership.py), at most one per commit; each entry is
--     'A' customer_key            a lifetime begun, in log order: the customer takes the next ordinal
--     'M' customer_key n bits...  '+k' sets, '-k' clears the customer's bit in the bitmap KEYS[k]
--   (customer_key, k: indexes into KEYS; bits are cleared at the stored ordinal `_o`, set at the new one)
-- Redis does not roll back a script that fails half way, so everything is checked before the first write:
-- the arguments, the type of every key written (WRONGTYPE), that every counter HINCRBY moves holds an integer
-- (NOTINT) and stays inside the 64-bit range (OVERFLOW). The `#!lua` line above makes Redis 7 refuse the
-- whole script up front when it is over maxmemory (a script without it fails at its first write command).
-- The ordinal map keys (`<tag>o:<chunk>`) the membership writes touch and the due chunks (`<tag>q:<chunk>`, and
-- `<tag>q:_` for a customer with a hash but no ordinal) must be among KEYS, last (the client declares them from the `_o`
-- it knows and the partition's ordinal counter it tracks). Why: while their slot MIGRATEs,
-- Redis checks only the declared keys before it picks the node that runs the script; an undeclared chunk that
-- has not moved yet would be missing on the importing node (an erasure would miss it, a new entry would
-- create it there and stop the migration with BUSYKEY), and one that has moved would fail the script half way
-- on the source. Declared, Redis answers ASK/TRYAGAIN until they are all on one node (until the migration
-- ends for a chunk that does not exist yet, as for a new customer's hash). A needed chunk the
-- client did not declare is refused before any write: 'CHUNKS <ordinal counter> <chunk numbers...>'; the
-- client declares them and sends the same commit again. The writes never delete a key and then write it (sets
-- before deletes): mid-migration, a command on a key missing from the source node makes Redis stop the script
-- half way ("non local key"). Only a customer deleted and then written again in one commit would still do
-- that; no caller sends one.
-- Reply: 'DUP', or {number of customer writes, ordinal counter after the commit (-1: no BITS op), then per
-- ordinal given: the customer key's index in KEYS and the ordinal} (the client keeps both, so its next
-- declarations are right).
-- The commit sequence makes a retried commit idempotent: a client that timed out cannot know whether the
-- script ran; if it did, the retry finds its sequence already applied and returns 'DUP' without writing
-- (index counters would otherwise count twice).
local meta, due = KEYS[1], KEYS[2]
local token, seq_arg, owner = string.match(ARGV[1], '^(%d+):(%d+):?([%w]*)$')
if not token then
  return redis.error_reply('BADARGS fence:sequence[:owner] expected, got ' .. tostring(ARGV[1]))
end
local fence, stored_owner = unpack(redis.call('HMGET', meta, 'fence', 'owner'))
if fence == token and owner ~= '' and stored_owner and stored_owner ~= owner then
  -- the same fence number, claimed again by someone else after Redis lost our claim: theirs now
  return redis.error_reply('FENCED partition fence ' .. fence .. ' was claimed again by another owner')
end
if fence ~= token then
  -- a stored fence below ours (or none) means Redis lost writes (restore, failover to a lagging replica):
  -- nobody else claimed the partition; the caller claims it again and resumes from what is stored
  if not fence or tonumber(fence) < tonumber(token) then
    return redis.error_reply('REWOUND partition fence ' .. tostring(fence) .. ' is below our claim ' .. token)
  end
  return redis.error_reply('FENCED partition owned by ' .. tostring(fence) .. ', not ' .. token)
end
local function int_arg(v) return v ~= nil and string.match(v, '^-?%d+$') ~= nil end
local applied_seq, applied, wm = unpack(redis.call('HMGET', meta, 'seq', 'offset', 'watermark'))
if (applied and not int_arg(applied)) or (wm and not int_arg(wm)) then
  return redis.error_reply('NOTINT ' .. meta .. ' offset/watermark: ' .. tostring(applied) .. '/' .. tostring(wm))
end
if (ARGV[2] ~= '' and not int_arg(ARGV[2])) or (ARGV[3] ~= '' and not int_arg(ARGV[3])) then
  return redis.error_reply('BADARGS offset and watermark are integers or empty')
end
local seq = tonumber(seq_arg)
applied_seq = tonumber(applied_seq or '0')
if seq <= applied_seq then
  -- A retry is of the last commit that landed (a client has one commit of a partition in flight at a time),
  -- and carries the offset it applied. An older sequence, or an offset beyond the applied one, is no retry
  -- but a client whose sequence went back: 'DUP' would drop its changes unwritten. It claims again and
  -- resumes from what is stored.
  if seq < applied_seq or (ARGV[2] ~= '' and (not applied or tonumber(ARGV[2]) > tonumber(applied))) then
    local offset = ARGV[2] ~= '' and ARGV[2] or 'none'
    return redis.error_reply('REWOUND commit ' .. seq_arg .. ' with offset ' .. offset .. ' after commit '
      .. applied_seq .. ' applied offset ' .. tostring(applied))
  end
  return 'DUP'
end
if seq ~= applied_seq + 1 then
  -- our own earlier commits are gone: Redis went back in time under the same fence
  return redis.error_reply('REWOUND commit ' .. seq_arg .. ' after ' .. applied_seq .. ' under our own fence')
end
if ARGV[2] ~= '' and applied and tonumber(applied) >= tonumber(ARGV[2]) then
  return redis.error_reply('STALE offset ' .. ARGV[2] .. ' <= applied ' .. applied)
end
-- the n strings of the msgpack array s (the client's `commit_script.pack`), or nil: Redis's cmsgpack
-- takes it apart in C (~2x faster than splitting NUL-joined parts in Lua was); anything but an array
-- of exactly n strings is refused before any write
local function split(s, n)
  if s == nil then return nil end
  local ok, parts = pcall(cmsgpack.unpack, s)
  if not ok or type(parts) ~= 'table' or #parts ~= n then return nil end
  for x = 1, n do
    if type(parts[x]) ~= 'string' then return nil end
  end
  return parts
end
-- the customer parts: ARGV itself from ARGV[5], or the parts of the packed ARGV[5]
local n_writes, n_parts = tonumber(ARGV[4]), nil
local parts, j, i = ARGV, 5, nil
if not n_writes then
  local w, p = string.match(ARGV[4] or '', '^(%d+):(%d+)$')
  n_writes, n_parts = tonumber(w), tonumber(p)
  if n_parts then
    parts, j = split(ARGV[5], n_parts), 1
    if not parts then return redis.error_reply('BADARGS packed writes') end
  end
end
if not n_writes or n_writes < 0 or n_writes + 2 > #KEYS then
  return redis.error_reply('BADARGS number of writes')
end
-- plan: key, customer id, kind, due, then (indexes into parts) the first and last of the set pairs and the
-- last of the removed names, which follow the pairs
local plan, k = {}, 3
for _ = 1, n_writes do
  local n_set, n_rem = tonumber(parts[j + 3]), tonumber(parts[j + 4])
  local kind = parts[j + 1]
  if (kind ~= 'S' and kind ~= 'D') or not n_set or not n_rem or n_set < 0 or n_rem < 0 or KEYS[k] == nil then
    return redis.error_reply('BADARGS at customer part ' .. j)
  end
  local first, mid, last = j + 5, j + 4 + 2 * n_set, j + 4 + 2 * n_set + n_rem
  if kind == 'D' then mid, last = first - 1, first - 1 end
  if last > #parts then
    return redis.error_reply('BADARGS counts do not match the arguments at customer part ' .. j)
  end
  local at, kept = parts[j + 2], false
  if string.byte(at, 1) == 61 then at, kept = string.sub(at, 2), true end  -- '=': unchanged (see above)
  if at ~= '' and not string.match(at, '^-?%d+$') then
    return redis.error_reply('BADARGS due time at customer part ' .. j)
  end
  plan[#plan + 1] = {KEYS[k], parts[j], kind, at, first, mid, last, kept}
  j, k = last + 1, k + 1
end
if n_parts then
  if j ~= n_parts + 1 then return redis.error_reply('BADARGS packed writes do not match their count') end
  i = 6
else
  i = j
end
if i > #ARGV + 1 then
  return redis.error_reply('BADARGS counts do not match the keys')
end
local function key_arg(v)
  local n = tonumber(v)
  if n and n >= 1 and n <= #KEYS and math.floor(n) == n then return n end
  return nil
end
-- BITS entries as {allocs = keys in log order, moves = key -> {{set?, bitmap}...}, order = keys}, or nil
local function parse_bits(src, first, last)
  local b = {allocs = {}, moves = {}, order = {}, index = {}}
  local j = first
  while j <= last do
    local tag, k = src[j], key_arg(src[j + 1])
    if not k then return nil end
    local key = KEYS[k]
    if not b.index[key] then
      b.index[key] = k
      b.order[#b.order + 1] = key
    end
    if tag == 'A' then
      b.allocs[#b.allocs + 1] = key
      j = j + 2
    elseif tag == 'M' then
      local n = tonumber(src[j + 2])
      if not n or n < 1 or j + 2 + n > last then return nil end
      local m = b.moves[key] or {}
      b.moves[key] = m
      for x = j + 3, j + 2 + n do
        local sign, bk = string.match(src[x], '^([+-])(%d+)$')
        bk = bk and key_arg(bk)
        if not bk then return nil end
        m[#m + 1] = {sign == '+', KEYS[bk]}
      end
      j = j + 3 + n
    else
      return nil
    end
  end
  return b
end
local bits = nil
local ops = {}
while i <= #ARGV do
  local name, key, n = ARGV[i], key_arg(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if not key or not n or n < 0 then
    return redis.error_reply('BADOP malformed op at argument ' .. i)
  end
  -- src[first..last] are the op's args: ARGV itself, or the parts of a packed op ('SADD*'...: one argument
  -- with the n args in a msgpack array)
  local src, first, last, after = ARGV, i + 3, i + 2 + n, i + 3 + n
  if string.sub(name, -1) == '*' then
    name, src, first, last, after = string.sub(name, 1, -2), split(ARGV[i + 3], n), 1, n, i + 4
    if not src then return redis.error_reply('BADOP packed args at argument ' .. i) end
  elseif last > #ARGV then
    return redis.error_reply('BADOP malformed op at argument ' .. i)
  end
  if name == 'SADD' or name == 'SREM' then
    if n < 1 then return redis.error_reply('BADOP ' .. name .. ' without members at ' .. i) end
  elseif name == 'HSET' then
    if n < 2 or n % 2 ~= 0 then return redis.error_reply('BADOP HSET pairs at ' .. i) end
    if KEYS[key] == meta then  -- of the meta hash an op sets the sweep mark only: fence, owner, seq are ours
      for j = first, last, 2 do
        if src[j] ~= 'sweeping' or not int_arg(src[j + 1]) then
          return redis.error_reply('BADOP HSET of the meta hash sets sweeping only, at ' .. i)
        end
      end
    end
  elseif name == 'HINCRBY' then
    if n < 2 or n % 2 ~= 0 then return redis.error_reply('BADOP HINCRBY pairs at ' .. i) end
    for j = first + 1, last, 2 do
      if not int_arg(src[j]) then return redis.error_reply('BADOP HINCRBY delta at ' .. j) end
    end
  elseif name == 'BITS' then
    if bits or KEYS[key] ~= meta then return redis.error_reply('BADOP BITS at ' .. i) end
    bits = parse_bits(src, first, last)
    if not bits then return redis.error_reply('BADOP BITS entries at ' .. i) end
  else
    return redis.error_reply('BADOP unknown op ' .. tostring(name) .. ' at ' .. i)
  end
  ops[#ops + 1] = {name, KEYS[key], src, first, last}
  i = after
end
-- The keys hold what the writes need (or nothing): TYPE once per key; a key nothing holds yet takes the
-- first kind asked of it, so two ops cannot ask for different kinds of one new key either.
local kind_of = {}
local function expect(key, want)
  local have = kind_of[key]
  if have == nil then
    have = redis.call('TYPE', key)['ok']
  end
  if have == 'none' or have == want then
    kind_of[key] = want
    return nil
  end
  return 'WRONGTYPE ' .. key .. ' holds a ' .. have .. ', the commit writes it as a ' .. want
end
local bad = nil
if #plan > 0 then bad = expect(due, 'zset') end
for _, p in ipairs(plan) do
  if bad then break end
  if p[3] == 'S' then bad = expect(p[1], 'hash') end
end
if bad then return redis.error_reply(bad) end
-- Counters: HINCRBY refuses a value that is not an integer and a result outside int64. Lua numbers are
-- doubles (exact to 2^53 only), so the bound is conservative: |current| + |delta| must stay below 9.2e18
-- (2^63 is ~9.223e18; the doubles' rounding is ~1e3 there, far inside the margin). One HMGET per op.
local LIMIT = 9.2e18
-- Below 2^53 a double holds every integer exactly: each HINCRBY op's results are then known here, and written
-- with one HSET (and one HDEL for the counters back at 0) per op instead of one HINCRBY per field (~3x less
-- Redis CPU per counter). A field whose value or delta reaches 2^53 is left to HINCRBY, exact in Redis.
local EXACT = 9007199254740992
local function int64_text(v)
  return v == '0' or (string.match(v, '^-?[1-9]%d*$') ~= nil and #v <= 20)
end
local UNPACKED = 1000  -- values handed to one redis.call at most (unpack() fails past ~8,000 values)
-- `command key` over list[first..last] in calls of at most `size` values (2 * UNPACKED: field-value pairs)
local function sliced(command, key, list, first, last, size)
  for s = first, last, size do redis.call(command, key, unpack(list, s, math.min(s + size - 1, last))) end
end
local projected = {}  -- key -> field -> value once the ops before have run (several ops may share a field)
local inexact = {}  -- key -> field -> true once a value of it may be beyond EXACT (HINCRBY from then on)
for _, op in ipairs(ops) do
  local name, key, src, first, last = op[1], op[2], op[3], op[4], op[5]
  if name == 'SADD' or name == 'SREM' then
    bad = expect(key, 'set')
  elseif name == 'HSET' then
    bad = expect(key, 'hash')
  elseif name == 'HINCRBY' then
    bad = expect(key, 'hash')
    if not bad then
      local fields, current = {}, {}
      for j = first, last, 2 do fields[#fields + 1] = src[j] end
      for s = 1, #fields, UNPACKED do  -- unpack() stops at Lua's C stack (~8,000 values): in slices
        local slice = redis.call('HMGET', key, unpack(fields, s, math.min(s + UNPACKED - 1, #fields)))
        for x = 1, #slice do current[s + x - 1] = slice[x] end
      end
      local seen, far = projected[key], inexact[key]
      if not seen then
        seen, far = {}, {}
        projected[key], inexact[key] = seen, far
      end
      local results = {}  -- per field pair of the op: the field's value after it
      op[6] = results
      for n, f in ipairs(fields) do
        local delta, value = src[first + 2 * n - 1], seen[f]
        if value == nil then
          local text = current[n]
          if text and not int64_text(text) then
            bad = 'NOTINT ' .. key .. ' field ' .. f .. ' holds ' .. string.sub(text, 1, 40) .. ', not an integer'
            break
          end
          value = text and tonumber(text) or 0
        end
        local d = tonumber(delta)
        if not int64_text(delta) or math.abs(value) + math.abs(d) >= LIMIT then
          bad = 'OVERFLOW ' .. key .. ' field ' .. f .. ': ' .. (current[n] or '0') .. ' + ' .. delta
            .. ' could leave the 64-bit integer range'
          break
        end
        seen[f], results[n] = value + d, value + d
        if math.abs(value) + math.abs(d) >= EXACT then far[f] = true end
      end
    end
  end
  if bad then return redis.error_reply(bad) end
end
-- Membership: resolve and allocate the ordinals (no write yet), then check every key BITS writes.
local CHUNK = 128
local tag = string.sub(meta, 1, #meta - 4)  -- '<prefix>:<ns>:{<topic>:<p>}:'
local function chunk_key(ordinal) return tag .. 'o:' .. math.floor(ordinal / CHUNK) end
local declared = {}  -- the chunk keys (`o:`, `q:`) the client declared; it puts them last: O(chunks)
for k = #KEYS, 1, -1 do
  local kind = string.sub(KEYS[k], #tag + 1, #tag + 2)
  if string.sub(KEYS[k], 1, #tag) ~= tag or (kind ~= 'o:' and kind ~= 'q:') then break end
  declared[KEYS[k]] = true
end
if bits then
  local counter = redis.call('HGET', meta, 'ordinals')
  if counter and not string.match(counter, '^%d+$') then
    return redis.error_reply('NOTINT ' .. meta .. ' field ordinals holds ' .. string.sub(counter, 1, 40))
  end
  counter = tonumber(counter or '0')
  bits.start = counter
  local old, new, gone = {}, {}, {}
  for _, p in ipairs(plan) do gone[p[1]] = (p[3] == 'D') end
  for _, key in ipairs(bits.order) do
    bad = expect(key, 'hash')
    if bad then return redis.error_reply(bad) end
    local o = redis.call('HGET', key, '_o')
    if o and not string.match(o, '^%d+$') then
      return redis.error_reply('NOTINT ' .. key .. ' field _o holds ' .. string.sub(o, 1, 40))
    end
    if o then old[key] = tonumber(o) end  -- HGET answers false, not nil, for no field
  end
  for _, key in ipairs(bits.allocs) do
    new[key] = counter  -- a customer with several lifetimes in the batch keeps its last
    counter = counter + 1
  end
  for _, key in ipairs(bits.order) do
    -- a customer entering a segment without a begun lifetime nor an ordinal (written by a caller that
    -- does not report lifetimes): the next ordinal, in op order
    if not gone[key] and new[key] == nil and old[key] == nil then
      for _, mv in ipairs(bits.moves[key] or {}) do
        if mv[1] then
          new[key] = counter
          counter = counter + 1
          break
        end
      end
    end
  end
  bits.counter, bits.old, bits.new, bits.gone = counter, old, new, gone
  -- every chunk written must be declared (see the header): refuse, naming them, before any write
  local missing, listed = {}, {}
  local function need(ordinal)
    local ck = chunk_key(ordinal)
    if not declared[ck] and not listed[ck] then
      listed[ck] = true
      missing[#missing + 1] = tostring(math.floor(ordinal / CHUNK))
    end
  end
  for _, key in ipairs(bits.order) do
    local o, n = old[key], new[key]
    if o and (gone[key] or n) then need(o) end
    if n and not gone[key] then need(n) end
  end
  if #missing > 0 then
    return redis.error_reply('CHUNKS ' .. bits.start .. ' ' .. table.concat(missing, ' '))
  end
  for _, key in ipairs(bits.order) do
    for _, mv in ipairs(bits.moves[key] or {}) do
      bad = expect(mv[2], 'string')
      if bad then return redis.error_reply(bad) end
    end
    local o, n = old[key], new[key]
    if o and (gone[key] or n) then bad = expect(chunk_key(o), 'hash') end
    if not bad and n and not gone[key] then bad = expect(chunk_key(n), 'hash') end
    if bad then return redis.error_reply(bad) end
  end
end
-- Due times, the sweep's index: a customer's next time-driven change is kept in its ordinal's chunk
-- `q:<ordinal // CHUNK>` (member `<ordinal % CHUNK>`: a listpack of at most CHUNK entries, ~14 bytes each,
-- where a sorted set of ids cost a ~70-byte skiplist entry per customer), or by id in `q:_` for a customer
-- the store gave no ordinal (written without membership: tools and tests; a worker's all have one). KEYS[2]
-- (`due`) holds each chunk's earliest time (member: the chunk number, or `_`). A customer written twice keeps
-- its last due time. Checked here, written after the customers: every chunk key must be declared, like `o:`.
-- A due time marked unchanged ('=', most writes of a live stream: an event that moves no time-driven
-- change) needs nothing here when its customer is written once and keeps its ordinal: its entry is already
-- where and what it should be. Written twice, or given an ordinal by this commit, it is moved as any other.
local QHEAD = tag .. 'q:'
local UNORDERED = QHEAD .. '_'
local last_of, due_ids, rewritten, planned, written = {}, {}, {}, {}, {}
for _, p in ipairs(plan) do
  if last_of[p[2]] == nil then due_ids[#due_ids + 1] = p[2] end
  written[p[2]] = (written[p[2]] or 0) + 1
  if p[3] == 'D' then rewritten[p[2]] = true end  -- deleted: a later write of it has no `_o` but a new one
  last_of[p[2]] = p
  planned[p[1]] = true
end
if bits then  -- an ordinal moves with its due time: only for a customer the batch writes
  for _, key in ipairs(bits.order) do
    if not planned[key] then return redis.error_reply('BADOP BITS names a customer not written: ' .. key) end
  end
end
local due_adds, due_rems, due_keys = {}, {}, {}
local function due_list(into, key)
  local l = into[key]
  if not l then
    if not due_adds[key] and not due_rems[key] then due_keys[#due_keys + 1] = key end
    l = {}
    into[key] = l
  end
  return l
end
for _, cid in ipairs(due_ids) do
  local key, kind, at = last_of[cid][1], last_of[cid][3], last_of[cid][4]
  local kept = last_of[cid][8] and written[cid] == 1 and kind ~= 'D' and not (bits and bits.new[key] ~= nil)
  if not kept then
    local old, new = nil, nil
    if bits and bits.index[key] then
      old = bits.old[key]
    else
      local o = redis.call('HGET', key, '_o')
      if o and not string.match(o, '^%d+$') then
        return redis.error_reply('NOTINT ' .. key .. ' field _o holds ' .. string.sub(o, 1, 40))
      end
      if o then old = tonumber(o) end
    end
    if kind ~= 'D' then
      if not rewritten[cid] then new = old end
      if bits and bits.new[key] ~= nil then new = bits.new[key] end
    end
    -- where it is now: its ordinal's chunk; without one, `q:_` if it has a hash (only a hash written without
    -- membership has no `_o`; not touching `q:_` otherwise keeps it out of a worker's commits)
    local from_key, from_member = nil, nil
    if old then
      from_key, from_member = QHEAD .. math.floor(old / CHUNK), tostring(old % CHUNK)
    elseif redis.call('EXISTS', key) == 1 then
      from_key, from_member = UNORDERED, cid
    end
    local to_key, to_member = nil, nil
    if kind ~= 'D' and at ~= '' then
      to_key, to_member = UNORDERED, cid
      if new then to_key, to_member = QHEAD .. math.floor(new / CHUNK), tostring(new % CHUNK) end
      local l = due_list(due_adds, to_key)
      l[#l + 1] = at
      l[#l + 1] = to_member
    end
    if from_key and (from_key ~= to_key or from_member ~= to_member) then
      local l = due_list(due_rems, from_key)
      l[#l + 1] = from_member
    end
  end
end
local due_missing = {}
for _, key in ipairs(due_keys) do
  if not declared[key] then due_missing[#due_missing + 1] = string.sub(key, #QHEAD + 1) end
end
if #due_missing > 0 then
  local counter = bits and bits.start or tonumber(redis.call('HGET', meta, 'ordinals') or '0')
  return redis.error_reply('CHUNKS ' .. counter .. ' ' .. table.concat(due_missing, ' '))
end
for _, key in ipairs(due_keys) do
  bad = expect(key, 'zset')
  if bad then return redis.error_reply(bad) end
end
local function write_bits(b)
  local per, bitmaps, dels, sets, chunks, listed = {}, {}, {}, {}, {}, {}
  local function chunk(ordinal, into)
    local ck = chunk_key(ordinal)
    local l = into[ck]
    if not l then
      l = {}
      into[ck] = l
      if not listed[ck] then
        listed[ck] = true
        chunks[#chunks + 1] = ck
      end
    end
    return l, tostring(ordinal % CHUNK)
  end
  for _, key in ipairs(b.order) do
    local o, n, gone = b.old[key], b.new[key], b.gone[key]
    for _, mv in ipairs(b.moves[key] or {}) do
      local at = mv[1] and not gone and (n or o) or (not mv[1] and o)
      if at then
        local l = per[mv[2]]
        if not l then
          l = {{}, {}, {}}  -- clears, sets at ordinals given before this batch, sets at ordinals given in it
          per[mv[2]] = l
          bitmaps[#bitmaps + 1] = mv[2]
        end
        local into = (not mv[1] and l[1]) or (at < b.start and l[2]) or l[3]
        into[#into + 1] = at
      end
    end
    if o and (gone or n) then
      local l, f = chunk(o, dels)
      l[#l + 1] = f
    end
    if n and not gone then
      local l, f = chunk(n, sets)
      l[#l + 1] = f
      l[#l + 1] = string.sub(key, #tag + 3)  -- the id: the key is '<tag>c:<id>'
      redis.call('HSET', key, '_o', n)
    end
  end
  for _, bm in ipairs(bitmaps) do
    -- clears before sets: a customer re-created in the batch leaves at its old ordinal, enters at its new
    local l, args = per[bm], {}
    for v = 1, 2 do
      local value = (v == 1) and '0' or '1'
      for _, at in ipairs(l[v]) do
        args[#args + 1] = 'SET'
        args[#args + 1] = 'u1'
        args[#args + 1] = at
        args[#args + 1] = value
        if #args >= 4000 then
          redis.call('BITFIELD', bm, unpack(args))
          args = {}
        end
      end
    end
    if #args > 0 then redis.call('BITFIELD', bm, unpack(args)) end
    local fresh = l[3]
    if #fresh > 0 then
      -- the ordinals given in this batch held no bit yet: set them in Lua in the bytes they span, read once
      -- (after the clears above, which may share the first byte) and written back once (SETRANGE), instead
      -- of a BITFIELD subcommand per bit (most of a new customer's cost in Redis)
      local lo, hi = fresh[1], fresh[1]
      for _, at in ipairs(fresh) do
        if at < lo then lo = at elseif at > hi then hi = at end
      end
      lo, hi = math.floor(lo / 8), math.floor(hi / 8)
      local stored, bytes = redis.call('GETRANGE', bm, lo, hi), {}
      for s = 1, #stored, 4000 do
        for x, v in ipairs({string.byte(stored, s, math.min(s + 3999, #stored))}) do bytes[s + x - 1] = v end
      end
      for x = #stored + 1, hi - lo + 1 do bytes[x] = 0 end
      for _, at in ipairs(fresh) do
        local x = math.floor(at / 8) - lo + 1
        bytes[x] = bit.bor(bytes[x], bit.rshift(128, at % 8))
      end
      local text = {}
      for s = 1, #bytes, 4000 do
        text[#text + 1] = string.char(unpack(bytes, s, math.min(s + 3999, #bytes)))
      end
      redis.call('SETRANGE', bm, lo, table.concat(text))
    end
  end
  for _, ck in ipairs(chunks) do
    -- sets before deletes (never the same field: an ordinal is given once), so no delete empties (deletes) a
    -- chunk that is written after: mid-migration Redis refuses a command on a key missing from the source
    -- node (ASK), and the script would stop half way
    if sets[ck] then redis.call('HSET', ck, unpack(sets[ck])) end
    if dels[ck] then redis.call('HDEL', ck, unpack(dels[ck])) end
  end
  if b.counter ~= b.start then redis.call('HSET', meta, 'ordinals', b.counter) end
end
-- Every check passed: write.
for _, p in ipairs(plan) do
  local key, kind, first, mid, last = p[1], p[3], p[5], p[6], p[7]
  if kind == 'D' then
    redis.call('DEL', key)
  else
    -- sets before deletes, for the reason given at the ordinal chunks (write_bits)
    sliced('HSET', key, parts, first, mid, 2 * UNPACKED)
    sliced('HDEL', key, parts, mid + 1, last, UNPACKED)
  end
end
-- Due times: additions, then each touched chunk's new earliest time, read before its removals (a removal may
-- empty, so delete, the chunk: mid-migration a key deleted by the script cannot be read again, see the
-- header), then the removals, then the heads into `due`.
for _, key in ipairs(due_keys) do
  local l = due_adds[key]
  if l then sliced('ZADD', key, l, 1, #l, 2 * UNPACKED) end
end
local earliest, emptied = {}, {}
for _, key in ipairs(due_keys) do
  local gone, removed, head = due_rems[key] or {}, {}, nil
  for _, member in ipairs(gone) do removed[member] = true end
  -- the first #gone + 1 entries hold the first one kept, if any is (ZRANGEBYSCORE: in the ACL, ZRANGE not)
  local firsts = redis.call('ZRANGEBYSCORE', key, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, #gone + 1)
  for x = 1, #firsts, 2 do
    if not removed[firsts[x]] then
      head = firsts[x + 1]
      break
    end
  end
  if head then
    earliest[#earliest + 1] = head
    earliest[#earliest + 1] = string.sub(key, #QHEAD + 1)
  else
    emptied[#emptied + 1] = string.sub(key, #QHEAD + 1)
  end
end
for _, key in ipairs(due_keys) do
  local l = due_rems[key]
  if l then sliced('ZREM', key, l, 1, #l, UNPACKED) end
end
sliced('ZADD', due, earliest, 1, #earliest, 2 * UNPACKED)
sliced('ZREM', due, emptied, 1, #emptied, UNPACKED)
for _, op in ipairs(ops) do
  local name, key, src, first, last = op[1], op[2], op[3], op[4], op[5]
  if name == 'HINCRBY' then
    -- a counter back at 0 is deleted (readers read absent as 0): otherwise a KPI hash would keep "0" only
    -- where some commit saw the segment occupied, and its content would depend on the batch size
    local far, final, names, sets, zeros = inexact[key], {}, {}, {}, {}
    for n, value in ipairs(op[6]) do
      local f = src[first + 2 * n - 2]
      if far[f] then  -- some value of it may be beyond EXACT in this commit: Redis adds
        if redis.call('HINCRBY', key, f, src[first + 2 * n - 1]) == 0 then redis.call('HDEL', key, f) end
      else
        if final[f] == nil then names[#names + 1] = f end
        final[f] = value  -- a field named twice in the op ends at its last value
      end
    end
    for _, f in ipairs(names) do
      local value = final[f]
      if value == 0 then
        zeros[#zeros + 1] = f
      else
        sets[#sets + 1] = f
        sets[#sets + 1] = string.format('%d', value)
      end
    end
    sliced('HSET', key, sets, 1, #sets, 2 * UNPACKED)
    sliced('HDEL', key, zeros, 1, #zeros, 2 * UNPACKED)
  elseif name == 'BITS' then
    write_bits(bits)
  elseif name == 'HSET' then
    sliced('HSET', key, src, first, last, 2 * UNPACKED)
  else  -- SADD / SREM
    sliced(name, key, src, first, last, UNPACKED)
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', meta, 'offset', ARGV[2])
end
if ARGV[3] ~= '' then
  if not wm or tonumber(wm) < tonumber(ARGV[3]) then
    redis.call('HSET', meta, 'watermark', ARGV[3])
  end
end
redis.call('HSET', meta, 'seq', seq_arg)
local reply = {#plan, -1}
if bits then
  reply[2] = bits.counter
  for _, key in ipairs(bits.order) do
    local n = bits.new[key]
    if n and not bits.gone[key] then
      reply[#reply + 1] = bits.index[key]
      reply[#reply + 1] = n
    end
  end
end
return reply
