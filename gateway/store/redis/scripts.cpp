// The Lua scripts (see scripts.hpp): a shared prelude, the algorithm's check() mirroring its
// function in limit/algorithms.cpp line for line (where the Lua differs in form, a comment says why
// the result is the same), and a driver that runs check() for every key of the call.
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

// Shared by all five: the clock, integer division, formatting, and the state cache.
constexpr std::string_view prelude = R"lua(
-- Set by the algorithm's part below (Redis allows scripts no global variables).
local check, write

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

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
-- gcra: the theoretical arrival time, a string.
local function read(key)
  local stored = redis.call('GET', key)
  if stored then return tonumber(stored) end
  return false
end
function write(key, tat, ttl)
  redis.call('SET', key, int(tat), 'PX', ttl)
end

function check(key, requests, window, burst, cost)
  local t = math.max(1, ceil_div(window, requests))
  local tat = now
  local stored = load(key, read)
  if stored then tat = math.max(stored, now) end
  local tolerance = (burst - cost) * t  -- negative when cost > burst: never admitted

  local admitted = tat - now <= tolerance
  local new_tat = tat
  if admitted then new_tat = tat + cost * t end
  local used = ceil_div(new_tat - now, t)
  local remaining = 0
  if burst > used then remaining = burst - used end
  local reset = new_tat - now
  if admitted then save(key, new_tat, reset) end
  local retry_after = 0
  if not admitted then
    if tolerance < 0 then retry_after = window else retry_after = tat - now - tolerance end
  end
  return admitted, remaining, reset, retry_after
end
)lua";

constexpr std::string_view token_bucket_body = R"lua(
-- token_bucket: hash {level, last}; level counts tokens x window, refilled by `requests` per us.
local function read(key)
  local state = redis.call('HMGET', key, 'level', 'last')
  if state[1] == false then return false end
  return {level = tonumber(state[1]), last = tonumber(state[2])}
end
function write(key, s, ttl)
  redis.call('HSET', key, 'level', int(s.level), 'last', int(s.last))
  redis.call('PEXPIRE', key, ttl)
end

function check(key, requests, window, burst, cost)
  local w = window
  local rate = requests
  local capacity = burst * w
  local state = load(key, read)
  local level = capacity
  local last = 0
  if state then
    level = state.level
    last = state.last
  end
  if state and now > last then
    -- level + elapsed * rate may pass 2^53 and round, but only when the true sum is above
    -- capacity, and rounding never takes it below: min still gives exactly capacity.
    local elapsed = math.min(now - last, ceil_div(capacity, rate))
    level = math.min(capacity, level + elapsed * rate)
  end
  last = math.max(last, now)

  local need = cost * w
  local admitted = level >= need
  if admitted then level = level - need end
  local remaining = idiv(level, w)
  local reset = ceil_div(capacity - level, rate)
  -- Only an admitted request changes what the state means: a refill without a take is recomputed
  -- the same next time, from the older level and time.
  if admitted then save(key, {level = level, last = last}, reset) end
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

function check(key, requests, window, burst, cost)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
  local used = redis.call('ZCARD', key)

  local admitted = used + cost <= requests
  if admitted then
    local at = int(now)
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

// Leases (SPEC 12), for the window algorithms: the calling convention of `driver` with two more
// arguments per key after p_1 .. p_n: <want_1> <max_us_1> .. <want_n> <max_us_n>. A key with
// want > cost asks for a lease: k = min(want, room / 4) units are taken at once if k >= cost
// (room is what the window has left, so that several holders together never take the last
// of it, and a key near its limit is checked request by request); the lease lives until the
// window's end, at most max_us. Otherwise the check is an ordinary one. Seven integers per key:
// the decision's four, granted (0: no lease), the lease's life_us, and its window's start.
// Taking k units is exactly k requests admitted now, in this window: whatever the holder admits
// from them in the window is within the count, and the holder never admits past the window.
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
  local admitted, remaining, reset, retry_after = check(key, requests, window, burst, cost)
  return admitted, remaining, reset, retry_after, 0, 0, 0
end
)lua";

// Giving back what a lease did not use: KEYS are the state keys, ARGV per key <unused> <mark>
// <window_us>. fixed_window: only into the window the units were taken from (a later window
// never held them); HINCRBY keeps the key's TTL.
constexpr std::string_view release_template = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 2])
  local start = redis.call('HGET', KEYS[i], 'start')
  if start and tonumber(start) == tonumber(ARGV[3 * i - 1]) then
    local left = tonumber(redis.call('HGET', KEYS[i], 'FIELD') or '0')
    redis.call('HINCRBY', KEYS[i], 'FIELD', -math.min(unused, left))
  end
end
return 0
)lua";

// sliding_window: also after the window rolled, when the units' window is now the previous one
// (its count weighs on the current window's estimate).
constexpr std::string_view sliding_release = R"lua(
for i = 1, #KEYS do
  local unused = tonumber(ARGV[3 * i - 2])
  local mark = tonumber(ARGV[3 * i - 1])
  local state = redis.call('HMGET', KEYS[i], 'start', 'curr', 'prev')
  if state[1] then
    local start = tonumber(state[1])
    local window = tonumber(ARGV[3 * i])
    if start == mark then
      redis.call('HINCRBY', KEYS[i], 'curr', -math.min(unused, tonumber(state[2])))
    elseif start == mark + window then
      redis.call('HINCRBY', KEYS[i], 'prev', -math.min(unused, tonumber(state[3])))
    end
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
  std::array<std::string, 5> sources;
  std::array<script, 5> scripts;
  std::array<std::string, 5> lease_sources, release_sources;
  std::array<std::optional<script>, 5> leases, releases;  // the window algorithms only

  script_table() {
    constexpr std::array<std::pair<algorithms::algorithm, std::string_view>, 5> bodies{{
        {algorithms::algorithm::gcra, gcra_body},
        {algorithms::algorithm::token_bucket, token_bucket_body},
        {algorithms::algorithm::sliding_window, sliding_window_body},
        {algorithms::algorithm::sliding_log, sliding_log_body},
        {algorithms::algorithm::fixed_window, fixed_window_body},
    }};
    for (const auto& [algo, body] : bodies) {
      const auto i = static_cast<std::size_t>(algo);
      sources[i] = "-- gateway rate limit: " + std::string{algorithms::to_string(algo)} + "\n" +
                   std::string{prelude} + std::string{body} + std::string{read_policies} +
                   std::string{driver};
      scripts[i] = script{algorithms::to_string(algo), sources[i], sha1_hex(sources[i])};
      // Leases for the window algorithms only, so far (README: "Leases").
      const char* field = algo == algorithms::algorithm::fixed_window     ? "count"
                          : algo == algorithms::algorithm::sliding_window ? "curr"
                                                                          : nullptr;
      if (!field) continue;
      lease_sources[i] = "-- gateway rate limit lease: " +
                         std::string{algorithms::to_string(algo)} + "\n" + std::string{prelude} +
                         std::string{body} + std::string{window_take} +
                         std::string{read_policies} + std::string{lease_driver};
      leases[i] = script{algorithms::to_string(algo), lease_sources[i], sha1_hex(lease_sources[i])};
      std::string release{algo == algorithms::algorithm::sliding_window ? sliding_release
                                                                        : release_template};
      for (auto at = release.find("FIELD"); at != std::string::npos; at = release.find("FIELD"))
        release.replace(at, 5, field);
      release_sources[i] = "-- gateway rate limit release: " +
                           std::string{algorithms::to_string(algo)} + "\n" + release;
      releases[i] =
          script{algorithms::to_string(algo), release_sources[i], sha1_hex(release_sources[i])};
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

const script* lease_script_for(algorithms::algorithm a) {
  const auto& s = table().leases.at(static_cast<std::size_t>(a));
  return s ? &*s : nullptr;
}

const script* release_script_for(algorithms::algorithm a) {
  const auto& s = table().releases.at(static_cast<std::size_t>(a));
  return s ? &*s : nullptr;
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
  const auto* bytes = reinterpret_cast<const unsigned char*>(reply.data()) + reply_bytes_per_check * i;
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
