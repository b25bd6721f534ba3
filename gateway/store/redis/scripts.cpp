// The Lua scripts (see scripts.hpp): a shared prelude, the algorithm's check() mirroring its
// function in algorithms/algorithms.cpp line for line (where the Lua differs in form, a comment
// says why the result is the same; what leases add, the memory store never needs), and a driver
// that runs check() for every key of the call.
// Lua 5.1 numbers are doubles: every quantity here is an integer below 2^53 (the config loader
// bounds max(requests, burst) x window by 2^53), where doubles are exact; the only rounding
// operation is division, which idiv corrects.
#include "store/redis/scripts.hpp"

#include <openssl/evp.h>

#include <array>
#include <optional>
#include <stdexcept>

namespace gw::store::redis {

namespace {

// Shared by all five: integer division, formatting, and the state cache.
constexpr std::string_view prelude = R"lua(
-- Set by the algorithm's part below and by `clock` (Redis allows scripts no global variables).
local check, write, now

-- a / b rounded down, for a >= 0 and b > 0. The division is correctly rounded, so it can only be
-- one off when the quotient lies next to an integer; the multiplications decide exactly.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- As the C++ ceil_div: 0 for a <= 0. Without a + b - 1, which could pass 2^53.
local function ceil_div(a, b)
  if a <= 0 then return 0 end
  local q = idiv(a, b)
  if q * b < a then q = q + 1 end
  return q
end

-- Numbers as command arguments, exactly: every integer here is below 2^53, and %d formats it as
-- a 64-bit integer. (Redis would format a number passed as is with %.17g, and %.0f or tostring
-- go through the same slow floating-point path; those cost more than the command itself.)
local function int(x)
  return string.format('%d', x)
end

-- A key lives as long as its state means something: until reset, rounded up to the millisecond.
local function ttl_ms(reset)
  return int(math.max(1, ceil_div(reset, 1000) + 1))
end

-- Each key's state is read from Redis once per call and written back once, at the end, with the
-- TTL of its last update: checks of one key within a call see each other's updates exactly as
-- if each had been its own call, for a read and a write per key instead of per check.
-- `read(key)` returns the state or false (cold); `write(key, state, ttl_ms)` stores it.
local states, resets, dirty = {}, {}, {}
local function load(key, read)
  local s = states[key]
  if s == nil then
    s = read(key)
    states[key] = s
  end
  return s
end
local function save(key, s, reset)
  if resets[key] == nil then dirty[#dirty + 1] = key end
  states[key] = s
  resets[key] = reset
end
)lua";

// The time: ARGV[1], or Redis TIME when it is empty (as the gateway sends it; tests set it).
constexpr std::string_view clock = R"lua(
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
)lua";

// A Redis Cluster call for one node: the script is flagged allow-cross-slot-keys (its first
// line), declares one key, by which the cluster routes it, and carries the others first in ARGV:
// 1 key_1 <n - 1> key_2 .. key_n, then the arguments as above. They are moved to where the rest
// of the script reads them. Every key is touched before anything is written: a key of a slot
// this node does not serve (any more, or yet) fails the call before it changed anything.
constexpr std::string_view node_shebang = "#!lua flags=allow-cross-slot-keys\n";
constexpr std::string_view node_keys = R"lua(
do
  local extra = tonumber(ARGV[1])
  for i = 1, extra do
    KEYS[i + 1] = ARGV[i + 1]
    redis.call('EXISTS', ARGV[i + 1])
  end
  local n = #ARGV
  for i = 1, n - extra - 1 do ARGV[i] = ARGV[i + extra + 1] end
  for i = n - extra, n do ARGV[i] = nil end
end
)lua";

// Both drivers begin by reading the call's policies once; `first` is where the p_i begin.
constexpr std::string_view read_policies = R"lua(
local policies = {}
for j = 1, tonumber(ARGV[2]) do
  local a = 4 * j - 1
  policies[j] = {tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
                 tonumber(ARGV[a + 3])}
end
local first = 4 * #policies + 2
)lua";

// Runs check() for every key in order, writes back what changed, answers four integers per key.
constexpr std::string_view driver = R"lua(
local out = {}
for i = 1, #KEYS do
  local p = policies[tonumber(ARGV[first + i])]
  local admitted, remaining, reset, retry_after = check(KEYS[i], p[1], p[2], p[3], p[4])
  out[4 * i - 3] = admitted and 1 or 0
  out[4 * i - 2] = remaining
  out[4 * i - 1] = reset
  out[4 * i] = retry_after
end
for _, key in ipairs(dirty) do write(key, states[key], ttl_ms(resets[key])) end
-- One string of 8-byte big-endian integers: a single bulk reply, which the client reads without
-- an object per number (and Redis writes without one per number either).
return struct.pack('>' .. string.rep('i8', #out), unpack(out))
)lua";

constexpr std::string_view gcra_body = R"lua(
-- gcra: the theoretical arrival time, and the time leases gave back below it ("holes", README
-- "Leases"): a string "<tat>", or "<tat>,<x>-<e>,..", each hole the free time [x, e) of the
-- emission timeline. Holes are time, not slots: a policy with another emission interval (a
-- tier's override, a reload) reads them as the time they are, as it reads tat.
local function parse(stored)
  local s = {holes = {}}
  for field in string.gmatch(stored, '[^,]+') do
    if not s.tat then
      s.tat = tonumber(field)
      if not s.tat then break end
    else
      local x, e = string.match(field, '^(%d+)%-(%d+)$')
      if x then s.holes[#s.holes + 1] = {tonumber(x), tonumber(e)} end
    end
  end
  if not s.tat then error('gcra state is not a number') end
  return s
end
local function read(key)
  local stored = redis.call('GET', key)
  if stored then return parse(stored) end
  return false
end
local function text(s)
  local out = int(s.tat)
  for _, h in ipairs(s.holes) do out = out .. ',' .. int(h[1]) .. '-' .. int(h[2]) end
  return out
end
function write(key, s, ttl)
  redis.call('SET', key, text(s), 'PX', ttl)
end

-- The holes' time from `from` on, in order: a slot may only be spent up to its start.
local function trim(holes, from)
  local kept = {}
  for _, h in ipairs(holes) do
    local x = math.max(h[1], from)
    if h[2] > x then kept[#kept + 1] = {x, h[2]} end
  end
  table.sort(kept, function(a, b) return a[1] < b[1] end)
  return kept
end

-- Whole slots of t in the holes that end by `horizon`.
local function spare(holes, t, horizon)
  local n = 0
  for _, h in ipairs(holes) do n = n + idiv(math.max(0, math.min(h[2], horizon) - h[1]), t) end
  return n
end

function check(key, requests, window, burst, cost)
  local t = math.max(1, ceil_div(window, requests))
  local tat = now
  local stored = load(key, read)
  local holes = {}
  if stored then
    tat = math.max(stored.tat, now)
    if #stored.holes > 0 then holes = trim(stored.holes, now) end
  end
  -- Not in the C++ (the memory store never leases): time a lease gave back serves a request
  -- first, from the front of the soonest hole that has room. The slot starts at or after now and
  -- ends by now + burst x t, as an ordinary slot would (the hole was made under the policy of
  -- whoever leased it, which may have had a longer horizon): the request keeps gcra's bound
  -- (README "Leases").
  local horizon = now + burst * t
  if cost > 0 then
    for _, h in ipairs(holes) do
      if h[2] - h[1] >= cost * t and h[1] + cost * t <= horizon then
        h[1] = h[1] + cost * t
        local used = ceil_div(tat - now, t)
        local remaining = math.min(burst, math.max(0, burst - used) + spare(holes, t, horizon))
        save(key, {tat = stored.tat, holes = trim(holes, now)}, tat - now)
        return true, remaining, tat - now, 0
      end
    end
  end
  local tolerance = (burst - cost) * t  -- negative when cost > burst: never admitted

  local admitted = tat - now <= tolerance
  local new_tat = tat
  if admitted then new_tat = tat + cost * t end
  local used = ceil_div(new_tat - now, t)
  local remaining = 0
  if burst > used then remaining = burst - used end
  remaining = math.min(burst, remaining + spare(holes, t, horizon))
  local reset = new_tat - now
  if admitted then save(key, {tat = new_tat, holes = holes}, reset) end
  local retry_after = 0
  if not admitted then
    if tolerance < 0 then retry_after = window else retry_after = tat - now - tolerance end
  end
  return admitted, remaining, reset, retry_after
end
)lua";

constexpr std::string_view token_bucket_body = R"lua(
-- token_bucket: hash {level, last, lease}; level counts tokens x window, refilled by `requests`
-- per us. `lease` stamps each change (above every earlier stamp, and at least the time): a
-- release gives units back only if nothing changed since its lease (README "Leases").
local function read(key)
  local state = redis.call('HMGET', key, 'level', 'last', 'lease')
  if state[1] == false then return false end
  return {level = tonumber(state[1]), last = tonumber(state[2]), lease = tonumber(state[3]) or 0}
end
function write(key, s, ttl)
  redis.call('HSET', key, 'level', int(s.level), 'last', int(s.last), 'lease', int(s.lease))
  redis.call('PEXPIRE', key, ttl)
end
local function stamp(state)
  if state then return math.max(state.lease + 1, now) end
  return now
end

-- The level at now, and the time it is as of (later than now if another clock ran ahead).
local function refill(state, capacity, rate)
  if not state then return capacity, 0 end
  local level = state.level
  if now > state.last then
    -- level + elapsed * rate may pass 2^53 and round, but only when the true sum is above
    -- capacity, and rounding never takes it below: min still gives exactly capacity.
    local elapsed = math.min(now - state.last, ceil_div(capacity, rate))
    level = math.min(capacity, level + elapsed * rate)
  end
  return level, state.last
end

function check(key, requests, window, burst, cost)
  local w = window
  local rate = requests
  local capacity = burst * w
  local state = load(key, read)
  local level, last = refill(state, capacity, rate)
  last = math.max(last, now)

  local need = cost * w
  local admitted = level >= need
  if admitted then level = level - need end
  local remaining = idiv(level, w)
  local reset = ceil_div(capacity - level, rate)
  -- Only an admitted request changes what the state means: a refill without a take is recomputed
  -- the same next time, from the older level and time.
  if admitted then save(key, {level = level, last = last, lease = stamp(state)}, reset) end
  local retry_after = 0
  if not admitted then
    if need > capacity then retry_after = w else retry_after = ceil_div(need - level, rate) end
  end
  return admitted, remaining, reset, retry_after
end
)lua";

constexpr std::string_view sliding_window_body = R"lua(
-- sliding_window: hash {start, curr, prev}, the current aligned window and the two counts.
local function read(key)
  local state = redis.call('HMGET', key, 'start', 'curr', 'prev')
  if not state[1] then return false end
  return {start = tonumber(state[1]), curr = tonumber(state[2]), prev = tonumber(state[3])}
end
function write(key, s, ttl)
  redis.call('HSET', key, 'start', int(s.start), 'curr', int(s.curr), 'prev', int(s.prev))
  redis.call('PEXPIRE', key, ttl)
end

function check(key, requests, window, burst, cost)
  local w = window
  local start = idiv(now, w) * w  -- now - now % w, for now >= 0
  local current_start = 0
  local curr = 0
  local prev = 0
  local state = load(key, read)
  if state then
    current_start = state.start
    curr = state.curr
    prev = state.prev
  end
  if current_start ~= start then
    -- The current window becomes the previous one only if it is the window right before.
    if current_start == start - w then prev = curr else prev = 0 end
    curr = 0
    current_start = start
  end
  local elapsed = now - start

  -- C++: prev*(w - elapsed) + (curr + cost)*w <= requests*w. Moved to
  -- prev*(w - elapsed) <= (requests - curr - cost)*w, where no term exceeds requests*w <= 2^53.
  local room = requests - curr - cost
  local admitted = room >= 0 and prev * (w - elapsed) <= room * w
  if admitted then curr = curr + cost end
  local left = (requests - curr) * w - prev * (w - elapsed)
  local remaining = 0
  if left > 0 then remaining = idiv(left, w) end
  local reset = w - elapsed
  if curr > 0 then reset = 2 * w - elapsed end
  -- Rejected, the state only rolls forward to this window, which the next call redoes the same.
  if admitted then save(key, {start = start, curr = curr, prev = prev}, reset) end
  local retry_after = 0
  if not admitted then
    -- Within this window the previous count fades linearly; find when it has faded enough.
    if room >= 0 and prev > 0 then
      -- prev*(w - e) <= room*w  <=>  e >= w - room*w/prev
      local e = w - idiv(room * w, prev)
      retry_after = math.max(e - elapsed, 1)
    else
      -- Next window: the current count becomes the fading one.
      local room_next = requests - cost
      local e = w  -- never, within the next window: report its end
      if room_next >= 0 then
        if curr > 0 then e = w - idiv(room_next * w, curr) else e = 0 end
      end
      retry_after = (w - elapsed) + math.max(e, 0)
    end
  end
  return admitted, remaining, reset, retry_after
end
)lua";

constexpr std::string_view sliding_log_body = R"lua(
-- sliding_log: a sorted set with one member per admitted unit of cost, scored by its time.
-- Members at one score are "<time>-1" .. "<time>-n": expiry removes a score's members together,
-- so the next ones there are numbered on from ZCOUNT and never collide. Too large a state to
-- cache: every check works on the set itself, and writes nothing back at the end.
function write() end

-- `logged`: the time the units are logged at, now for a check (a lease logs its units at its
-- end, README "Leases"). Entries logged in the future count from now on, like any other.
local function check_at(key, requests, window, cost, logged)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
  local used = redis.call('ZCARD', key)

  local admitted = used + cost <= requests
  if admitted then
    local at = int(logged)
    local n = redis.call('ZCOUNT', key, at, at)
    -- In slices: unpack is bounded by the Lua C stack (8000 values).
    local i = 1
    while i <= cost do
      local args = {}
      local last = math.min(cost, i + 999)
      for j = i, last do
        args[#args + 1] = at
        args[#args + 1] = at .. '-' .. int(n + j)
      end
      redis.call('ZADD', key, unpack(args))
      i = last + 1
    end
    used = used + cost
  end
  local remaining = requests - math.min(used, requests)
  local reset = 0
  if used > 0 then
    local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    reset = tonumber(newest[2]) + window - now
  end
  if admitted then redis.call('PEXPIRE', key, ttl_ms(reset)) end
  local retry_after = 0
  if not admitted then
    -- The oldest entries leave first; once `excess` of them are gone the request fits.
    local excess = used + cost - requests
    retry_after = reset
    if excess <= used then
      local entry = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
      retry_after = tonumber(entry[2]) + window - now
    end
    if cost > requests then retry_after = window end
  end
  return admitted, remaining, reset, retry_after
end

function check(key, requests, window, burst, cost)
  return check_at(key, requests, window, cost, now)
end
)lua";

constexpr std::string_view fixed_window_body = R"lua(
-- fixed_window: hash {start, count} of the aligned window.
local function read(key)
  local state = redis.call('HMGET', key, 'start', 'count')
  if not state[1] then return false end
  return {start = tonumber(state[1]), count = tonumber(state[2])}
end
function write(key, s, ttl)
  redis.call('HSET', key, 'start', int(s.start), 'count', int(s.count))
  redis.call('PEXPIRE', key, ttl)
end

function check(key, requests, window, burst, cost)
  local start = idiv(now, window) * window  -- now - now % window, for now >= 0
  local count = 0
  local state = load(key, read)
  if state and state.start == start then count = state.count end

  local window_end = start + window
  local admitted = count + cost <= requests
  if admitted then count = count + cost end
  local remaining = requests - math.min(count, requests)
  local reset = window_end - now
  if admitted then save(key, {start = start, count = count}, reset) end
  -- A cost above requests can never pass; the next window is still the honest answer.
  local retry_after = 0
  if not admitted then retry_after = window_end - now end
  return admitted, remaining, reset, retry_after
end
)lua";

// Leases (SPEC 12): the calling convention of `driver` with two more arguments per key after
// p_1 .. p_n: <want_1> <max_us_1> .. <want_n> <max_us_n>. A key with want > cost asks for a
// lease: the algorithm's take() gives k units at once, cost <= k <= a quarter of what is left
// (so that several holders together never take the last of it, and a key near its limit is
// checked request by request; gcra may give more from a hole, time given back earlier), for at
// most max_us; otherwise the check is an ordinary one. Seven integers per key: the decision's
// four, granted (0: no lease), the lease's life_us, and its mark (what the release needs: the
// window's start, gcra's slots' end, sliding_log's time, token_bucket's stamp).
// How each take() keeps the algorithm's bound is said above it (and in the README, "Leases").
constexpr std::string_view lease_driver = R"lua(
local wants = first + #KEYS
local out = {}
for i = 1, #KEYS do
  local p = policies[tonumber(ARGV[first + i])]
  local want = tonumber(ARGV[wants + 2 * i - 1])
  local max_us = tonumber(ARGV[wants + 2 * i])
  local admitted, remaining, reset, retry_after, granted, life, mark =
    take(KEYS[i], p[1], p[2], p[3], p[4], want, max_us)
  local o = 7 * (i - 1)
  out[o + 1] = admitted and 1 or 0
  out[o + 2] = remaining
  out[o + 3] = reset
  out[o + 4] = retry_after
  out[o + 5] = granted
  out[o + 6] = life
  out[o + 7] = mark
end
for _, key in ipairs(dirty) do write(key, states[key], ttl_ms(resets[key])) end
return struct.pack('>' .. string.rep('i8', #out), unpack(out))
)lua";

// Before every take(): the answer when no lease is given, an ordinary check.
constexpr std::string_view no_lease = R"lua(
local function no_lease(key, requests, window, burst, cost)
  local admitted, remaining, reset, retry_after = check(key, requests, window, burst, cost)
  return admitted, remaining, reset, retry_after, 0, 0, 0
end
)lua";

// take() for the window algorithms: k = min(want, room / 4) units of this window, at most until
// its end.
constexpr std::string_view window_take = R"lua(
local function take(key, requests, window, burst, cost, want, max_us)
  local start = idiv(now, window) * window
  -- 1 ms short of the window's end: the holder's clock and Redis's may differ that much.
  local life = math.min(max_us, start + window - now - 1000)
  if want > cost and life > 0 then
    -- A probe of cost 0 admits nothing and says what is left.
    local _, room = check(key, requests, window, burst, 0)
    local k = math.min(want, idiv(room, 4))
    if k >= cost then
      local admitted, remaining, reset, retry_after = check(key, requests, window, burst, k)
      return admitted, remaining, reset, retry_after, k, life, start
    end
  end
  return no_lease(key, requests, window, burst, cost)
end
)lua";

// take() for gcra: k slots that start no earlier than the lease ends (now + max_us) and end no
// later than an ordinary request's slot could (now + burst x t). A unit the holder admits at s,
// before the lease ends, so has a slot starting at or after s and ending by s + burst x t, the
// two facts gcra's bound (burst + rate x interval) rests on; the slots stay disjoint. From the
// back of the soonest hole that has a slot to give (time given back), else after tat; k is at
// most a quarter of the slots there are, unless the hole alone gives the request its own.
constexpr std::string_view gcra_take = R"lua(
local function take(key, requests, window, burst, cost, want, max_us)
  if want > cost then
    local t = math.max(1, ceil_div(window, requests))
    local from = now + max_us
    local stored = load(key, read)
    local tat, holes = now, {}
    if stored then
      tat = math.max(stored.tat, now)
      holes = trim(stored.holes, now)
    end
    local start = math.max(tat, from)
    local tail = 0
    if now + burst * t > start then tail = idiv(now + burst * t - start, t) end
    -- Slots of a hole from `from` on and up to the horizon, taken from the end of that: the
    -- hole's front stays for ordinary checks. The hole that is gone soonest goes first, even
    -- for a smaller lease: holes drain, and their number stays near the number of holders.
    local horizon = now + burst * t
    local best, in_hole, usable = nil, 0, 0
    for i, h in ipairs(holes) do
      local first, last, n = math.max(h[1], from), math.min(h[2], horizon), 0
      if last > first then n = idiv(last - first, t) end
      usable = usable + n
      if not best and n >= cost then best, in_hole = i, n end
    end
    local k = math.min(want, idiv(tail + usable, 4))
    if best then
      k = math.max(cost, math.min(k, in_hole))
    elseif k > tail then
      k = tail
    end
    if k >= cost then
      local finish
      if best then
        local h = holes[best]
        finish = math.min(h[2], horizon)
        if finish < h[2] then table.insert(holes, best + 1, {finish, h[2]}) end  -- past the horizon
        h[2] = finish - k * t
        if h[2] <= h[1] then table.remove(holes, best) end
      else
        finish = start + k * t
        tat = finish
      end
      local new_tat = math.max(tat, stored and stored.tat or 0)
      local used = ceil_div(new_tat - now, t)
      local remaining = math.min(burst, math.max(0, burst - used) + spare(holes, t, horizon))
      save(key, {tat = new_tat, holes = holes}, new_tat - now)
      return true, remaining, new_tat - now, 0, k, max_us, finish
    end
  end
  return no_lease(key, requests, window, burst, cost)
end
)lua";

// take() for token_bucket: gcra's take in the bucket's terms (token_bucket is gcra with the
// level for tat - now, README "Leases"). The k tokens are taken now from a bucket that may not
// count the refill of the lease's life: level' = min(level, capacity - life x rate) - k, so
// until the lease ends the bucket holds at most capacity - k, and k at most a quarter of the
// level. The life is cut short where capacity - life x rate would not hold k.
constexpr std::string_view token_bucket_take = R"lua(
local function take(key, requests, window, burst, cost, want, max_us)
  if want > cost then
    local w, rate, capacity = window, requests, burst * window
    local state = load(key, read)
    local level, last = refill(state, capacity, rate)
    local k = math.min(want, idiv(idiv(level, w), 4))
    local life = 0
    if k >= cost then life = math.min(max_us, idiv(capacity - k * w, rate)) end
    if life > 0 then
      level = math.min(level, capacity - life * rate) - k * w
      local lease = stamp(state)
      local reset = ceil_div(capacity - level, rate)
      save(key, {level = level, last = math.max(last, now), lease = lease}, reset)
      return true, idiv(level, w), reset, 0, k, life, lease
    end
  end
  return no_lease(key, requests, window, burst, cost)
end
)lua";

// take() for sliding_log: k entries logged at the lease's end, now + max_us, if the log (which
// counts them from now on) has room: any unit the holder admits, at s before that end, is logged
// at or after s, so every later check sees it for at least a window after s.
constexpr std::string_view sliding_log_take = R"lua(
local function take(key, requests, window, burst, cost, want, max_us)
  if want > cost then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
    local used = redis.call('ZCARD', key)
    local k = math.min(want, idiv(requests - math.min(used, requests), 4))
    if k >= cost then
      local admitted, remaining, reset, retry_after =
        check_at(key, requests, window, k, now + max_us)
      return admitted, remaining, reset, retry_after, k, max_us, now + max_us
    end
  end
  return no_lease(key, requests, window, burst, cost)
end
)lua";

// Giving back what a lease did not use: KEYS are the state keys, ARGV[1] the clock as the checks'
// (read only by gcra), then per key <unused> <mark> <unit> (the window for the window
// algorithms). fixed_window: only into the window the units were taken from (a later window
// never held them); HINCRBY keeps the key's TTL.
constexpr std::string_view fixed_window_release = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 1])
  local start = redis.call('HGET', KEYS[i], 'start')
  if start and tonumber(start) == tonumber(ARGV[3 * i]) then
    local left = tonumber(redis.call('HGET', KEYS[i], 'count') or '0')
    redis.call('HINCRBY', KEYS[i], 'count', -math.min(unused, left))
  end
end
return 0
)lua";

// sliding_window: also after the window rolled, when the units' window is now the previous one
// (its count weighs on the current window's estimate).
constexpr std::string_view sliding_window_release = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 1])
  local mark = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', KEYS[i], 'start', 'curr', 'prev')
  if state[1] then
    local start = tonumber(state[1])
    local window = tonumber(ARGV[3 * i + 1])
    if start == mark then
      redis.call('HINCRBY', KEYS[i], 'curr', -math.min(unused, tonumber(state[2])))
    elseif start == mark + window then
      redis.call('HINCRBY', KEYS[i], 'prev', -math.min(unused, tonumber(state[3])))
    end
  end
end
return 0
)lua";

// gcra (after the clock and the gcra body, for now, parse, trim and text): the unused slots are
// the lease's last ones, the time [finish - unused x t, finish), with ARGV <unused> <finish> <t>.
// It becomes a hole, joined to the holes it touches, and tat moves back over the holes that end
// at it (so a lease nothing was taken after leaves no hole). Holes already past are dropped; of
// the rest at most 8 are kept, dropping the soonest gone (which only admits less). A key whose
// state cannot be read is left as it is. SET KEEPTTL: the key lives as long as its tat says.
constexpr std::string_view gcra_release = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 1])
  local finish = tonumber(ARGV[3 * i])
  local t = tonumber(ARGV[3 * i + 1])
  local stored = redis.call('GET', KEYS[i])
  local ok, s = false, nil
  if stored and unused > 0 then ok, s = pcall(parse, stored) end
  -- Only time below tat can be a hole: above it, the next slots are given from tat anyway.
  if ok and finish <= s.tat then
    local holes = s.holes
    holes[#holes + 1] = {finish - unused * t, finish}
    holes = trim(holes, now)
    local joined = {}
    for _, h in ipairs(holes) do
      local last = joined[#joined]
      if last and h[1] <= last[2] then
        last[2] = math.max(last[2], h[2])
      else
        joined[#joined + 1] = h
      end
    end
    while #joined > 0 and joined[#joined][2] >= s.tat do
      s.tat = math.min(s.tat, joined[#joined][1])
      table.remove(joined)
    end
    while #joined > 8 do table.remove(joined, 1) end
    s.holes = joined
    redis.call('SET', KEYS[i], text(s), 'KEEPTTL')
  end
end
return 0
)lua";

// token_bucket: ARGV <unused> <lease> <window>. Only into the state the lease left, when nothing
// was taken since (its stamp is still the lease's): the unused tokens were the last ones taken,
// and giving them back is gcra's tat moving back over them. Otherwise they are lost, which only
// admits less. HINCRBY keeps the key's TTL, which is then longer than it needs to be.
constexpr std::string_view token_bucket_release = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 1])
  local lease = redis.call('HGET', KEYS[i], 'lease')
  if lease and tonumber(lease) == tonumber(ARGV[3 * i]) then
    local tokens = unused * tonumber(ARGV[3 * i + 1])
    redis.call('HINCRBY', KEYS[i], 'level', string.format('%d', tokens))
  end
end
return 0
)lua";

// sliding_log: ARGV <unused> <logged> <_>. The members at one score are numbered 1 .. m; taking
// away the highest `unused` keeps that so (entries at one time are all alike to the count).
constexpr std::string_view sliding_log_release = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 1])
  local at = ARGV[3 * i]
  local m = redis.call('ZCOUNT', KEYS[i], at, at)
  local j = m - math.min(unused, m) + 1
  while j <= m do  -- in slices, as ZADD in check_at
    local names = {}
    for n = j, math.min(m, j + 999) do names[#names + 1] = at .. '-' .. string.format('%d', n) end
    redis.call('ZREM', KEYS[i], unpack(names))
    j = j + #names
  end
end
return 0
)lua";

std::string sha1_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("EVP_Digest(sha1) failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0x0f];
  }
  return out;
}

struct script_table {
  // Indexed by algorithms::algorithm; the sources own the text the script views point into.
  std::array<std::string, 5> sources, lease_sources, release_sources, node_sources,
      node_lease_sources;
  std::array<script, 5> scripts, node_scripts;
  std::array<std::optional<script>, 5> leases, releases, node_leases;

  script_table() {
    struct parts {
      algorithms::algorithm algo;
      std::string_view body, take, release;
      bool release_needs_body;  // the release script needs the clock and the body's parse
    };
    constexpr std::array<parts, 5> all{{
        {algorithms::algorithm::gcra, gcra_body, gcra_take, gcra_release, true},
        {algorithms::algorithm::token_bucket, token_bucket_body, token_bucket_take,
         token_bucket_release, false},
        {algorithms::algorithm::sliding_window, sliding_window_body, window_take,
         sliding_window_release, false},
        {algorithms::algorithm::sliding_log, sliding_log_body, sliding_log_take,
         sliding_log_release, false},
        {algorithms::algorithm::fixed_window, fixed_window_body, window_take,
         fixed_window_release, false},
    }};
    for (const auto& p : all) {
      const auto i = static_cast<std::size_t>(p.algo);
      const std::string name{algorithms::to_string(p.algo)};
      const std::string common = std::string{prelude} + std::string{clock} + std::string{p.body};
      const auto make = [&](std::string& source, std::string_view title, bool node,
                            std::string_view rest) {
        source.clear();
        if (node) source.append(node_shebang);
        source.append("-- gateway rate limit").append(title).append(name).append("\n");
        if (node) source.append(node_keys);
        source.append(rest);
        return script{algorithms::to_string(p.algo), source, sha1_hex(source)};
      };
      const std::string check_rest = common + std::string{read_policies} + std::string{driver};
      scripts[i] = make(sources[i], ": ", false, check_rest);
      node_scripts[i] = make(node_sources[i], " (one cluster node): ", true, check_rest);
      if (p.take.empty()) continue;
      const std::string lease_rest = common + std::string{no_lease} + std::string{p.take} +
                                     std::string{read_policies} + std::string{lease_driver};
      leases[i] = make(lease_sources[i], " lease: ", false, lease_rest);
      node_leases[i] = make(node_lease_sources[i], " lease (one cluster node): ", true, lease_rest);
      const std::string release_rest = (p.release_needs_body ? common : std::string{}) +
                                       std::string{p.release};
      releases[i] = make(release_sources[i], " release: ", false, release_rest);
    }
  }
  script_table(const script_table&) = delete;
  script_table& operator=(const script_table&) = delete;
};

const script_table& table() {
  static const script_table t;
  return t;
}

}  // namespace

const script& script_for(algorithms::algorithm a) {
  return table().scripts.at(static_cast<std::size_t>(a));
}

const script& node_script_for(algorithms::algorithm a) {
  return table().node_scripts.at(static_cast<std::size_t>(a));
}

const script* node_lease_script_for(algorithms::algorithm a) {
  const auto& s = table().node_leases.at(static_cast<std::size_t>(a));
  return s ? &*s : nullptr;
}

const script* lease_script_for(algorithms::algorithm a) {
  const auto& s = table().leases.at(static_cast<std::size_t>(a));
  return s ? &*s : nullptr;
}

const script* release_script_for(algorithms::algorithm a) {
  const auto& s = table().releases.at(static_cast<std::size_t>(a));
  return s ? &*s : nullptr;
}

algorithms::micros release_unit(const algorithms::policy& p) {
  return p.algo == algorithms::algorithm::gcra ? algorithms::emission_interval(p) : p.window;
}

bool read_lease(std::string_view reply, std::size_t i, algorithms::decision& d,
                lease_grant& lease) {
  if (reply.size() < lease_reply_bytes_per_check * (i + 1)) return false;
  std::int64_t fields[7];
  const auto* bytes =
      reinterpret_cast<const unsigned char*>(reply.data()) + lease_reply_bytes_per_check * i;
  for (auto& field : fields) {
    std::uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v = (v << 8) | *bytes++;
    field = static_cast<std::int64_t>(v);
  }
  for (int f = 1; f < 7; ++f)
    if (fields[f] < 0) return false;
  if (fields[0] != 0 && fields[0] != 1) return false;
  d.admitted = fields[0] == 1;
  d.remaining = static_cast<std::uint64_t>(fields[1]);
  d.reset = fields[2];
  d.retry_after = fields[3];
  lease.granted = static_cast<std::uint64_t>(fields[4]);
  lease.life = fields[5];
  lease.mark = fields[6];
  return true;
}

bool read_decision(std::string_view reply, std::size_t i, algorithms::decision& d) {
  if (reply.size() < reply_bytes_per_check * (i + 1)) return false;
  std::int64_t fields[4];
  const auto* bytes =
      reinterpret_cast<const unsigned char*>(reply.data()) + reply_bytes_per_check * i;
  for (auto& field : fields) {
    std::uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v = (v << 8) | *bytes++;
    field = static_cast<std::int64_t>(v);
  }
  if ((fields[0] != 0 && fields[0] != 1) || fields[1] < 0 || fields[2] < 0 || fields[3] < 0)
    return false;
  d.admitted = fields[0] == 1;
  d.remaining = static_cast<std::uint64_t>(fields[1]);
  d.reset = fields[2];
  d.retry_after = fields[3];
  return true;
}

std::string state_key(std::string_view base_key, algorithms::algorithm a) {
  std::string key;
  const auto suffix = algorithms::to_string(a);
  key.reserve(base_key.size() + 1 + suffix.size());
  key.append(base_key).append(":").append(suffix);
  return key;
}

}  // namespace gw::store::redis
