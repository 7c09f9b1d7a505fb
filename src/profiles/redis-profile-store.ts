// Redis store (single node or Cluster): profiles as msgpack under p:{<typed id>}, read in one MGET (one pipeline
// per master on a Cluster) per event-loop turn; writes as an atomic Lua merge per key.
import calculateSlot from "cluster-key-slot";
import { Cluster, Redis, type Result } from "ioredis";
import {
  type Counters,
  MARK_SUFFIX,
  MAX_COUNTER_FIELDS,
  MAX_MARKERS,
  MAX_NOTICE_TOKENS,
} from "../capping/counters.ts";
import { NodeDownError, NodeGate, type NodeGateOptions } from "./node-gate.ts";
import {
  decodeProfile,
  encodeMembers,
  encodeMemberships,
  encodeOpsByKey,
  type LinkedMember,
  liveOrNull,
  type MembershipOp,
  type Profile,
} from "./profile-codec.ts";
import {
  type ApplyResult,
  type CounterState,
  groupByKey,
  type ImpressionOutcome,
  type ImpressionWrite,
  type LinkChange,
  type LinkEdge,
  type OriginUpdate,
  type ProfileStore,
} from "./profile-store.ts";

declare module "ioredis" {
  interface RedisCommander<Context> {
    audApplyMemberships(...args: (string | number | Buffer)[]): Result<number[], Context>;
    audOptOut(
      profileKey: string,
      optOutKey: string,
      countersKey: string,
      linksKey: string,
      markersKey: string,
      noticesKey: string,
      nowSec: number,
    ): Result<number, Context>;
    audRecordImpression(
      countersKey: string,
      markersKey: string,
      noticesKey: string,
      optOutKey: string,
      ...args: (string | number)[]
    ): Result<number, Context>;
    audAddCounters(
      countersKey: string,
      optOutKey: string,
      ...args: (string | number)[]
    ): Result<number, Context>;
    audWriteLink(linksKey: string, optOutKey: string, other: string, value: string): Result<number, Context>;
    audPutOrigin(
      profileKey: string,
      optOutKey: string,
      origin: string,
      version: number,
      rows: Buffer,
      nowSec: number,
    ): Result<number, Context>;
    audSetMembers(
      profileKey: string,
      optOutKey: string,
      members: Buffer,
      nowSec: number,
    ): Result<number, Context>;
  }
}

/** The braces are a Cluster hash tag: everything of one typed ID stays in one slot. */
export const profileKey = (typedId: string): string => `p:{${typedId}}`;
/** Opt-out marker of one ID, in the same slot as its profile so one script sees both. */
export const optOutKey = (typedId: string): string => `o:{${typedId}}`;
/** A person's impression counters (a hash of counters.ts fields), in the person's slot. */
export const countersKey = (personKey: string): string => `fc:{${personKey}}`;
/**
 * A person's impression markers: a sorted set of impression id -> epoch s when it lapses. One key per
 * person, so that erasure deletes it by name (never by a pattern that could match another ID's keys).
 */
export const markersKey = (personKey: string): string => `im:{${personKey}}`;
/** A person's notice-token uses: a hash of token nonce -> "<expiry> <imp> <imp>…", expiring with its tokens. */
export const noticesKey = (personKey: string): string => `nt:{${personKey}}`;
/** The identity graph's edges at one ID: a hash of linked ID -> "<confidence>|<source>". */
export const linksKey = (typedId: string): string => `l:{${typedId}}`;

/** Counter hashes outlive their longest bucket retention, for lifetime counts: renewed on every impression. */
const COUNTERS_TTL_SEC = 400 * 86_400;

/**
 * Lua: the stored profile format of profile-codec.ts, read (versions 1, 2 and 3) and written (version 3).
 * In a script a membership is a row {segment, expiresAt, source, generation}, whatever its stored form.
 * readProfile(cur, now) gives the live own rows, the own version and the person (nil when unlinked), each
 * member {key, confidence, version, live rows}; nil alone for a version it does not know.
 * writeProfile(rows, version, members) gives the bytes encodeProfile writes for them.
 */
const PROFILE_LUA = `
-- A segment id as the scripts hold it and format 3 stores it: a number when it is a plain decimal of up to 9
-- digits, else the string. Rows read are held so (format 3's integers are not made strings again, nor matched
-- again on write), and ops' segments compared so. Worked out once per distinct id in a script call: a bulk
-- load's call names the same segments over and over.
local segNumbers = {}
local function segValue(seg)
  local v = segNumbers[seg]
  if v == nil then
    v = seg
    if type(seg) == 'string' and #seg <= 9 and (seg == '0' or string.find(seg, '^[1-9]%d*$')) then
      v = tonumber(seg)
    end
    segNumbers[seg] = v
  end
  return v
end
local function liveRows(list, now, out)
  local n = #out
  for _, m in ipairs(list) do
    local exp = m[2]
    if exp == 0 or exp > now then
      local src, gen = m[3], m[4]
      if type(src) ~= 'string' then src = '' end
      if type(gen) ~= 'number' then gen = 0 end
      n = n + 1
      out[n] = {segValue(m[1]), exp, src, gen}
    end
  end
  return out
end
local function liveRuns(runs, base, sources, now)
  local out, k, i = {}, 0, 1
  local last = #runs
  while i <= last do
    local n, e = runs[i], runs[i + 1]
    local exp = 0
    if e ~= -1 then exp = base + e end
    if exp == 0 or exp > now then
      local src, gen = sources[runs[i + 2] + 1], runs[i + 3]
      for j = i + 4, i + 3 + n do
        k = k + 1
        out[k] = {runs[j], exp, src, gen}
      end
    end
    i = i + 4 + n
  end
  return out
end
local function readProfile(cur, now)
  local p = cmsgpack.unpack(cur)
  if type(p) ~= 'table' then return nil end
  local v3, at
  if (p[1] == 1 or p[1] == 2) and type(p[2]) == 'table' then
    v3, at = false, 2
  elseif p[1] == 3 and type(p[2]) == 'number' and type(p[3]) == 'table' and type(p[4]) == 'table' then
    v3, at = true, 4
  else
    return nil
  end
  local base, sources = p[2], p[3]
  local rows
  if v3 then rows = liveRuns(p[at], base, sources, now) else rows = liveRows(p[at], now, {}) end
  if p[1] == 1 or type(p[at + 2]) ~= 'table' then return rows, 0, nil end
  local members = {}
  for i, e in ipairs(p[at + 2]) do
    local list
    if v3 then list = liveRuns(e[4], base, sources, now) else list = liveRows(e[4], now, {}) end
    members[i] = {e[1], e[2], e[3], list}
  end
  return rows, p[at + 1], members
end
local function lowestExpiry(list, base)
  for i = 1, #list do
    local x = list[i][2]
    if x ~= 0 and (base == 0 or x < base) then base = x end
  end
  return base
end
-- The runs of format 3 for a list of rows, naming sources by their index in sources (added as met).
local function writeRuns(list, base, sources, index)
  local out, n, head, ns = {}, 0, 0, #sources
  local pe, ps, pg
  for i = 1, #list do
    local m = list[i]
    local src = m[3]
    local s = index[src]
    if s == nil then
      s = ns
      ns = ns + 1
      sources[ns] = src
      index[src] = s
    end
    local e, x, g = -1, m[2], m[4]
    if x ~= 0 then e = x - base end
    if head > 0 and e == pe and s == ps and g == pg then
      out[head] = out[head] + 1
    else
      head = n + 1
      out[head], out[head + 1], out[head + 2], out[head + 3] = 1, e, s, g
      n = n + 4
      pe, ps, pg = e, s, g
    end
    n = n + 1
    out[n] = segValue(m[1])
  end
  return out
end
-- Written as plain functions and counters, not closures per call and # per row: the writer was three times
-- the cost of format 1's single pack (3.6 against 1.2 us for 4 rows), the larger part of a load's Redis CPU.
local function writeProfile(rows, ver, members)
  local base = lowestExpiry(rows, 0)
  if members then
    for i = 1, #members do base = lowestExpiry(members[i][4], base) end
  end
  local sources, index = {}, {}
  local own = writeRuns(rows, base, sources, index)
  if members and #members > 0 then
    local held = {}
    for i = 1, #members do
      local e = members[i]
      held[i] = {e[1], e[2], e[3], writeRuns(e[4], base, sources, index)}
    end
    return cmsgpack.pack({3, base, sources, own, ver, held})
  end
  return cmsgpack.pack({3, base, sources, own})
end`;

/** Lua: reads the profile `cur` of `pkey` into its live own `rows`, `ver` and `members` (nil when unlinked). */
const READ_ROWS_LUA = `
      rows, ver, members = readProfile(cur, now)
      if rows == nil then
        return redis.error_reply('AUD_ERR_CODEC unsupported profile format at ' .. pkey)
      end`;

/** Lua: stores an unlinked ID's live `rows` under `pkey`, expiring with its last membership. */
const STORE_ROWS_LUA = `
      local latest, forever = 0, false
      for _, m in ipairs(rows) do
        if m[2] == 0 then forever = true elseif m[2] > latest then latest = m[2] end
      end
      if #rows == 0 then
        redis.call('DEL', pkey)
      elseif forever then
        redis.call('SET', pkey, writeProfile(rows))
      else
        redis.call('SET', pkey, writeProfile(rows), 'EXAT', latest)
      end`;

/**
 * The merge rules of profile-codec.ts `applyOps`, in Lua, so that concurrent loaders never lose each
 * other's writes. Redis' bundled cmsgpack reads and writes the same plain arrays as msgpackr.
 * KEYS = profile key, opt-out key, for each ID; ARGV[1] = now (epoch s); ARGV[2] = one flat msgpack array
 * holding, for each ID in KEYS order, its number of ops then each op's op (1 add, 0 remove), segment,
 * expiresAt, source, generation, minGeneration (profile-codec.ts encodeOpsByKey).
 * Several IDs per call amortise the script's fixed cost in bulk loads. Measured on 200,000 IDs, flat ops
 * (not a table per op) merged into the rows in place (not into a new table per op) cost a fifth less CPU per
 * ID with 4 ops (8.3 to 6.5 us) and a tenth less with 1 op on a held profile (4.2 to 3.8 us); reading the
 * call's profiles and opt-out markers in one MGET rather than a GET and an EXISTS per ID took about 6% off
 * Redis' CPU for a shuffled 2M-row load. Each key expires with its last membership; a linked ID keeps its
 * person, gets its own version bumped and does not expire. Every key written is written in the stored
 * format's current version, whichever version it held.
 * Returns, per ID, two numbers: the membership count left, or -1 when the ID opted out (nothing written);
 * then 1 when the ID is linked (its person's copies are to be updated), else 0.
 */
const APPLY_MEMBERSHIPS_LUA = `${PROFILE_LUA}
local now = tonumber(ARGV[1])
local ops = cmsgpack.unpack(ARGV[2])
local held = redis.call('MGET', unpack(KEYS))
local out = {}
local at = 1
for k = 1, #KEYS, 2 do
  local pkey = KEYS[k]
  local first = at + 1
  at = first + ops[at] * 6
  if held[k + 1] then
    out[#out + 1] = -1
    out[#out + 1] = 0
  else
    local rows, ver, members = {}, 0, nil
    local cur = held[k]
    if cur then
      ${READ_ROWS_LUA}
      if members and #members == 0 then members = nil end
    end
    for o = first, at - 1, 6 do
      local add, seg, exp, gen, mingen = ops[o] == 1, segValue(ops[o + 1]), ops[o + 2], ops[o + 4], ops[o + 5]
      local kept = 0
      for i = 1, #rows do
        local m = rows[i]
        local mgen = m[4] or 0
        if m[1] ~= seg or (add and mgen >= mingen and mgen ~= gen) then
          kept = kept + 1
          rows[kept] = m
        end
      end
      for i = #rows, kept + 1, -1 do rows[i] = nil end
      if add and (exp == 0 or exp > now) then rows[kept + 1] = {seg, exp, ops[o + 3], gen} end
    end
    if members then
      redis.call('SET', pkey, writeProfile(rows, ver + 1, members))
      out[#out + 1] = #rows
      out[#out + 1] = 1
    else
      ${STORE_ROWS_LUA}
      out[#out + 1] = #rows
      out[#out + 1] = 0
    end
  end
end
return out
`;

/**
 * Copies an origin's own memberships into a linked profile when the copy there is older (profile-codec.ts
 * putOrigin). KEYS = profile key, opt-out key; ARGV = origin, version, msgpack rows
 * [[segment, expiresAt, source, generation], ...], now. Returns 1 when replaced.
 */
const PUT_ORIGIN_LUA = `${PROFILE_LUA}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local now = tonumber(ARGV[4])
local rows, ver, members = readProfile(cur, now)
if not members then return 0 end
local v = tonumber(ARGV[2])
for _, e in ipairs(members) do
  if e[1] == ARGV[1] then
    if e[3] >= v then return 0 end
    e[3] = v
    e[4] = liveRows(cmsgpack.unpack(ARGV[3]), now, {})
    redis.call('SET', KEYS[1], writeProfile(rows, ver, members))
    return 1
  end
end
return 0
`;

/**
 * Sets the person of one ID (profile-codec.ts setMembers): its own memberships stay, a member's copy here
 * that is newer than the one given stays. KEYS = profile key, opt-out key; ARGV = msgpack members
 * [[key, confidence, version, rows], ...], now.
 */
const SET_MEMBERS_LUA = `${PROFILE_LUA}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local pkey = KEYS[1]
local now = tonumber(ARGV[2])
local rows, ver, held = {}, 0, {}
local cur = redis.call('GET', pkey)
if cur then
  local members
  ${READ_ROWS_LUA}
  for _, e in ipairs(members or {}) do held[e[1]] = e end
end
local members = cmsgpack.unpack(ARGV[1])
if #members > 0 then
  for _, e in ipairs(members) do
    local h = held[e[1]]
    if h and h[3] > e[3] then
      e[3] = h[3]
      e[4] = h[4]
    else
      e[4] = liveRows(e[4], now, {})
    end
  end
  redis.call('SET', pkey, writeProfile(rows, ver, members))
else
  ${STORE_ROWS_LUA}
end
return 1
`;

/**
 * Erases one ID's profile, counters, links, impression markers and notice-token uses, by their exact keys, and
 * marks it opted out, in one step. KEYS = p, o, fc, l, im, nt. Returns 1 when a profile was removed.
 */
const OPT_OUT_LUA = `
local removed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('SET', KEYS[2], ARGV[1])
return removed
`;

/** Lua: how a bucket field's prefix (up to its last '|') and number are read, and a mark "<lo> <hi>". */
const BUCKET_FIELD_LUA = "'^(.*|)(%d+)$'";
const MARK_LUA = "'^(-?%d+) (-?%d+)$'";

/**
 * Counts an impression exactly once, within the bounds of counters.ts, as one atomic step: a concurrent
 * opt-out, duplicate or replay cannot slip between a check and the write. Never reads the whole hash.
 * KEYS = counters hash fc, markers im, notice uses nt, opt-out o (one person's, one slot).
 * ARGV = now, imp, dedup TTL s, counters TTL s, nonce ('' = no token), uses, token expiry, number of lifetime
 * fields, the lifetime fields, then per (scope, granularity): prefix, bucket, lo, span (cap-windows.ts).
 * Returns 1 counted, 0 duplicate, -1 opted out, -2 token replayed, -3 counter hash full; only 1 writes.
 */
const RECORD_IMPRESSION_LUA = `
local fc, im, nt = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local now, imp = tonumber(ARGV[1]), ARGV[2]
local seen = redis.call('ZSCORE', im, imp)
if seen and tonumber(seen) > now then return 0 end
local nonce, spend = ARGV[5], nil
if nonce ~= '' then
  local cur = redis.call('HGET', nt, nonce)
  local n, found = 0, false
  if cur then
    for w in string.gmatch(cur, '%S+') do
      if n > 0 and w == imp then found = true end
      n = n + 1
    end
    n = n - 1
  else
    cur = ARGV[7]
    if redis.call('HLEN', nt) >= ${MAX_NOTICE_TOKENS} then
      local all = redis.call('HGETALL', nt)
      for i = 1, #all, 2 do
        if tonumber(string.match(all[i + 1], '^%d+')) <= now then redis.call('HDEL', nt, all[i]) end
      end
      if redis.call('HLEN', nt) >= ${MAX_NOTICE_TOKENS} then return -2 end
    end
  end
  if not found then
    if n >= tonumber(ARGV[6]) then return -2 end
    spend = cur .. ' ' .. imp
  end
end
local held = redis.call('HLEN', fc)
local adds = 0
local nl = tonumber(ARGV[8])
for i = 9, 8 + nl do
  if redis.call('HEXISTS', fc, ARGV[i]) == 0 then adds = adds + 1 end
end
local plans = {}
for i = 9 + nl, #ARGV, 4 do
  local prefix, b, lo, span = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local mlo, mhi = nil, nil
  local mark = redis.call('HGET', fc, prefix .. '${MARK_SUFFIX}')
  if mark then
    local a, z = string.match(mark, ${MARK_LUA})
    mlo, mhi = tonumber(a), tonumber(z)
  end
  if mlo == nil then adds = adds + 1 end
  local write = b >= math.max(lo, mlo or lo)
  if write and redis.call('HEXISTS', fc, prefix .. b) == 0 then adds = adds + 1 end
  plans[#plans + 1] = { prefix, b, lo, span, mlo, mhi, write }
end
if held + adds > ${MAX_COUNTER_FIELDS} then return -3 end
if spend then
  redis.call('HSET', nt, nonce, spend)
  local ttl = tonumber(ARGV[7]) - now
  if redis.call('TTL', nt) < ttl then redis.call('EXPIRE', nt, ttl) end
end
local dedup = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', im, '-inf', now)
redis.call('ZADD', im, now + dedup, imp)
local extra = redis.call('ZCARD', im) - ${MAX_MARKERS}
if extra > 0 then redis.call('ZREMRANGEBYRANK', im, 0, extra - 1) end
if redis.call('TTL', im) < dedup then redis.call('EXPIRE', im, dedup) end
for i = 9, 8 + nl do redis.call('HINCRBY', fc, ARGV[i], 1) end
for _, p in ipairs(plans) do
  local prefix, b, lo, span, mlo, mhi = p[1], p[2], p[3], p[4], p[5], p[6]
  if mlo == nil then
    -- No mark yet: buckets merged from a linked ID may lie anywhere within a span of lo.
    if held > 0 then
      for x = lo - span, lo - 1 do redis.call('HDEL', fc, prefix .. x) end
      mhi = lo + span
    else
      mhi = lo - 1
    end
    mlo = lo
  elseif lo > mlo then
    for x = mlo, math.min(lo - 1, mhi) do redis.call('HDEL', fc, prefix .. x) end
    mlo = lo
  end
  if p[7] then
    redis.call('HINCRBY', fc, prefix .. b, 1)
    if b > mhi then mhi = b end
  end
  redis.call('HSET', fc, prefix .. '${MARK_SUFFIX}', mlo .. ' ' .. mhi)
end
redis.call('EXPIRE', fc, ARGV[4])
return 1
`;

/** recordImpression's Lua replies, by outcome. */
const IMPRESSION_OUTCOMES: Readonly<Record<string, ImpressionOutcome>> = {
  "1": "counted",
  "0": "duplicate",
  "-1": "opted_out",
  "-2": "replayed",
  "-3": "full",
};

/**
 * Adds counts merged from a linked ID (addCounters): nothing when the ID opted out; a bucket below its
 * (scope, granularity)'s prune mark is dropped, one above it raises the mark's hi so that pruning reaches it.
 * KEYS = counters hash, opt-out; ARGV = counters TTL s, then field, count pairs. Returns 1 written, 0 not.
 */
const ADD_COUNTERS_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 2, #ARGV, 2 do
  local f, n = ARGV[i], ARGV[i + 1]
  local prefix, b = string.match(f, ${BUCKET_FIELD_LUA})
  local keep = true
  if prefix then
    local mk = prefix .. '${MARK_SUFFIX}'
    local mark = redis.call('HGET', KEYS[1], mk)
    if mark then
      local a, z = string.match(mark, ${MARK_LUA})
      b = tonumber(b)
      if b < tonumber(a) then keep = false elseif b > tonumber(z) then redis.call('HSET', KEYS[1], mk, a .. ' ' .. b) end
    end
  end
  if keep then redis.call('HINCRBY', KEYS[1], f, n) end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * One side of an identity link: KEYS = the ID's links hash, its opt-out key; ARGV = the other ID, and
 * "<confidence>|<source>" to add or '' to remove. An add to an opted-out ID writes nothing and returns 0.
 */
const WRITE_LINK_LUA = `
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/** A counter hash as Counters: the prune marks ("<lo> <hi>", counters.ts) are not counts. */
function countsOf(raw: Record<string, string>): Counters {
  const out = new Map<string, number>();
  for (const [f, v] of Object.entries(raw)) if (!f.endsWith(`|${MARK_SUFFIX}`)) out.set(f, Number(v));
  return out;
}

/** One lookup's profile reads, waiting for the end of this turn of the event loop (#read). */
interface QueuedRead {
  readonly keys: readonly string[];
  resolve(values: (Buffer | null)[]): void;
  reject(err: unknown): void;
}

/** Keys per merged MGET (#read): past it a turn's reads go in several. */
const MAX_KEYS_PER_MGET = 1_000;

/** Replies that mean "ask another node" (or "ask again"): the Cluster client follows them for a single command. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;

export interface RedisStoreOptions {
  /** A single Redis (redis:// or rediss://)… */
  readonly url?: string;
  /** …or the seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES). */
  readonly clusterNodes?: readonly { host: string; port: number }[];
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /**
   * Replicas that must hold a counted impression before recordImpression resolves (Redis WAIT); 0 trusts
   * the master alone. Redis replicates asynchronously: without this, a master that dies right after
   * counting loses an impression its caller saw acknowledged.
   */
  readonly impressionReplicas?: number;
  /** How long to wait for those replicas; past it the impression is reported not stored (the caller retries). */
  readonly impressionWaitMs?: number;
  /** CLIENT SETNAME of each connection, so that CLIENT LIST tells the service's connections apart. */
  readonly connectionName?: string;
  /**
   * On a Cluster, a breaker per master around the bid-time reads and the impression writes (node-gate.ts).
   * Without it every command is sent, whatever its master's state.
   */
  readonly nodeBreaker?: NodeGateOptions;
  /**
   * Cluster only: fail a command at once where the client would retry it after a delay (its master's
   * connection closed, CLUSTERDOWN, TRYAGAIN). For the bid path: a retry 20-50 ms later is past the
   * bidder's deadline anyway, and each one also made the client refresh its slot map. MOVED and ASK are
   * still followed, at once.
   */
  readonly noDelayedRetries?: boolean;
}

/** ioredis' error for a command not answered within commandTimeout (it has no class of its own). */
export const isCommandTimeout = (err: unknown): boolean =>
  err instanceof Error && err.message === "Command timed out";

/** A write the master took but too few replicas confirmed in time: not durable across a failover. */
export class NotReplicatedError extends Error {
  readonly code = "AUD_ERR_NOT_REPLICATED";
  constructor(
    readonly wanted: number,
    readonly acked: number,
  ) {
    super(`write reached ${acked} of ${wanted} replicas in time`);
  }
}

/**
 * IDs merged per script call: bounds the script's run time (about 0.4 ms, which other clients of the Redis wait
 * behind) and its reply. Measured on a 2M-row load, 100 or 200 IDs a call cost Redis the same CPU per ID as 50:
 * the fixed cost of a call is small beside the IDs' own reads and writes.
 */
const IDS_PER_SCRIPT = 50;

export class RedisProfileStore implements ProfileStore {
  readonly kind: "redis" | "redis-cluster";
  /** One connection (single node) or a Cluster client that routes each command to its slot's node. */
  readonly redis: Redis | Cluster;
  readonly #impressionReplicas: number;
  readonly #impressionWaitMs: number;
  readonly #connectTimeoutMs: number;
  /** Profile reads of this turn of the event loop, not yet sent (#read). */
  #queued: QueuedRead[] = [];
  /** A Cluster's breakers per master; null on a single Redis, or when not asked for. */
  readonly #gate: NodeGate | null;

  constructor(opts: RedisStoreOptions) {
    this.#impressionReplicas = opts.impressionReplicas ?? 0;
    this.#impressionWaitMs = opts.impressionWaitMs ?? 100;
    this.#connectTimeoutMs = opts.connectTimeoutMs;
    const options = {
      // Commands issued in the same tick (many requests, a batch of writes) leave in one write per node:
      // fewer syscalls, one round trip per node. On a Cluster this also groups keys per node.
      enableAutoPipelining: true,
      // A bid request cannot wait for a reconnect: fail at once and answer degraded instead of queueing.
      enableOfflineQueue: false,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: opts.connectTimeoutMs,
      // Retrying a timed-out read would only push it past the bidder's deadline.
      maxRetriesPerRequest: 0,
      // Keep reconnecting with a capped back-off; readiness reports the state meanwhile.
      retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
      lazyConnect: true,
      connectionName: opts.connectionName,
    };
    if (opts.clusterNodes !== undefined && opts.clusterNodes.length > 0) {
      this.kind = "redis-cluster";
      this.redis = new Cluster([...opts.clusterNodes], {
        // No auto-pipelining on a Cluster: ioredis handles a redirection (MOVED, ASK) per pipeline, not per
        // command, so while slots move a pipeline mixing moved and unmoved slots fails whole (most reads and
        // writes failed during a reshard when it was on). Every command is redirected on its own instead;
        // reads are batched per node by #clusterReads, which redirects per key.
        enableAutoPipelining: false,
        enableOfflineQueue: false,
        lazyConnect: true,
        // Slot moves and failovers answer MOVED/ASK/TRYAGAIN or CLUSTERDOWN: let ioredis follow those
        // (a few times, fast; on the bid path only MOVED and ASK, see noDelayedRetries), but never queue
        // behind a cluster that is down.
        maxRedirections: 8,
        retryDelayOnFailover: opts.noDelayedRetries === true ? 0 : 20,
        retryDelayOnClusterDown: opts.noDelayedRetries === true ? 0 : 50,
        retryDelayOnTryAgain: opts.noDelayedRetries === true ? 0 : 20,
        clusterRetryStrategy: (times: number) => Math.min(50 * times, 1_000),
        redisOptions: {
          commandTimeout: opts.commandTimeoutMs,
          connectTimeout: opts.connectTimeoutMs,
          maxRetriesPerRequest: 0,
          connectionName: opts.connectionName,
        },
      });
    } else {
      this.kind = "redis";
      this.redis = new Redis(opts.url ?? "redis://127.0.0.1:6379", options);
    }
    const cluster = this.redis instanceof Cluster ? this.redis : null;
    this.#gate =
      cluster !== null && opts.nodeBreaker !== undefined
        ? new NodeGate(opts.nodeBreaker, { onProbe: () => cluster.refreshSlotsCache() })
        : null;
    this.redis.defineCommand("audApplyMemberships", { lua: APPLY_MEMBERSHIPS_LUA });
    this.redis.defineCommand("audOptOut", { numberOfKeys: 6, lua: OPT_OUT_LUA });
    this.redis.defineCommand("audAddCounters", { numberOfKeys: 2, lua: ADD_COUNTERS_LUA });
    this.redis.defineCommand("audWriteLink", { numberOfKeys: 2, lua: WRITE_LINK_LUA });
    this.redis.defineCommand("audPutOrigin", { numberOfKeys: 2, lua: PUT_ORIGIN_LUA });
    this.redis.defineCommand("audSetMembers", { numberOfKeys: 2, lua: SET_MEMBERS_LUA });
    this.redis.defineCommand("audRecordImpression", { numberOfKeys: 4, lua: RECORD_IMPRESSION_LUA });
    // Errors surface through commands and readiness; an unhandled 'error' event would kill the process.
    this.redis.on("error", () => {});
  }

  /**
   * Connects, resolving once Redis answers; rejects with the connection error otherwise, or when the client
   * is not ready within two connect timeouts. On a Cluster it then opens a connection to every master: the
   * client opens a node's only on its first command, which then waits for the connection and its ready
   * check, and the first lookups after a start missed the 25 ms command timeout that way (answered degraded).
   */
  async connect(): Promise<void> {
    await this.#ready();
    if (this.redis instanceof Cluster)
      // A node that does not connect now is connected on its first command, as before.
      await Promise.all(this.redis.nodes("master").map((node) => node.connect().catch(() => {})));
  }

  /**
   * Readiness is also taken from the client's 'ready' event: ioredis' Cluster client, when its ready check
   * (CLUSTER INFO) runs past the command timeout, reconnects by itself and never settles the first
   * connect() (ioredis 5.11: the service then never started).
   */
  #ready(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.redis.off("ready", onReady);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onReady = (): void => done();
      const timer = setTimeout(
        () => done(new Error(`Redis not ready within ${2 * this.#connectTimeoutMs} ms`)),
        2 * this.#connectTimeoutMs,
      );
      this.redis.once("ready", onReady);
      this.redis.connect().then(
        () => done(),
        (err: Error) => done(err),
      );
    });
  }

  async readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]> {
    if (keys.length === 0) return []; // MGET with no keys is an error
    const redisKeys = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) redisKeys[i] = profileKey(keys[i] as string);
    const values = await this.#read(redisKeys);
    const out = new Array<Profile | null>(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      out[i] = v == null ? null : liveOrNull(decodeProfile(v, nowSec));
    }
    return out;
  }

  applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult> {
    return this.applyMembershipGroups(groupByKey(ops), nowSec);
  }

  /**
   * Every script call is issued before this returns, in one go (no call waits for another): on a single node
   * auto-pipelining sends them together on the one connection, behind any call made earlier, which keeps
   * calls in the order they were made. On a Cluster, the IDs of one slot share calls (their keys may meet
   * in one script), and each call goes to its slot's node on its own, redirected on its own; a slot's calls
   * follow each other on that node's connection.
   */
  applyMembershipGroups(
    groups: ReadonlyMap<string, readonly MembershipOp[]>,
    nowSec: number,
  ): Promise<ApplyResult> {
    const calls: Promise<number[]>[] = [];
    const callIds: string[][] = [];
    const issue = (ids: string[], lists: (readonly MembershipOp[])[]): void => {
      const keys = new Array<string>(ids.length * 2);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as string;
        keys[2 * i] = profileKey(id);
        keys[2 * i + 1] = optOutKey(id);
      }
      callIds.push(ids);
      calls.push(this.redis.audApplyMemberships(keys.length, ...keys, nowSec, encodeOpsByKey(lists)));
    };
    if (this.redis instanceof Cluster) {
      const bySlot = new Map<number, { ids: string[]; lists: (readonly MembershipOp[])[] }>();
      for (const [id, ops] of groups) {
        const slot = calculateSlot(profileKey(id));
        let part = bySlot.get(slot);
        if (part === undefined) {
          part = { ids: [], lists: [] };
          bySlot.set(slot, part);
        }
        part.ids.push(id);
        part.lists.push(ops);
        if (part.ids.length === IDS_PER_SCRIPT) {
          issue(part.ids, part.lists);
          bySlot.delete(slot);
        }
      }
      for (const part of bySlot.values()) issue(part.ids, part.lists);
    } else {
      let ids: string[] = [];
      let lists: (readonly MembershipOp[])[] = [];
      for (const [id, ops] of groups) {
        ids.push(id);
        lists.push(ops);
        if (ids.length === IDS_PER_SCRIPT) {
          issue(ids, lists);
          ids = [];
          lists = [];
        }
      }
      if (ids.length > 0) issue(ids, lists);
    }
    return Promise.all(calls).then((results) => {
      const skippedKeys: string[] = [];
      const linkedKeys: string[] = [];
      for (let c = 0; c < results.length; c++) {
        const counts = results[c] as number[];
        const ids = callIds[c] as string[];
        for (let j = 0; j < ids.length; j++) {
          if (counts[2 * j] === -1) skippedKeys.push(ids[j] as string);
          else if (counts[2 * j + 1] === 1) linkedKeys.push(ids[j] as string);
        }
      }
      return { skippedKeys, linkedKeys };
    });
  }

  async putOrigins(updates: readonly OriginUpdate[], nowSec: number): Promise<void> {
    if (updates.length === 0) return;
    await Promise.all(
      updates.map((u) =>
        this.redis.audPutOrigin(
          profileKey(u.target),
          optOutKey(u.target),
          u.origin,
          u.version,
          encodeMemberships(u.memberships),
          nowSec,
        ),
      ),
    );
  }

  async setMembers(
    views: readonly { key: string; members: readonly LinkedMember[] }[],
    nowSec: number,
  ): Promise<void> {
    if (views.length === 0) return;
    await Promise.all(
      views.map((v) =>
        this.redis.audSetMembers(profileKey(v.key), optOutKey(v.key), encodeMembers(v.members), nowSec),
      ),
    );
  }

  async readLinks(keys: readonly string[]): Promise<Map<string, Map<string, LinkEdge>>> {
    const out = new Map<string, Map<string, LinkEdge>>();
    if (keys.length === 0) return out;
    const results = await Promise.all(
      keys.map((k) => this.#gated(linksKey(k), () => this.redis.hgetall(linksKey(k)))),
    );
    for (let i = 0; i < keys.length; i++) {
      const edges = new Map<string, LinkEdge>();
      for (const [other, v] of Object.entries(results[i] as Record<string, string>)) {
        const bar = v.indexOf("|");
        edges.set(other, { confidence: Number(v.slice(0, bar)), source: v.slice(bar + 1) });
      }
      out.set(keys[i] as string, edges);
    }
    return out;
  }

  async writeLinks(changes: readonly LinkChange[]): Promise<LinkChange[]> {
    if (changes.length === 0) return [];
    const side = (from: string, to: string, value: string): Promise<number> =>
      this.redis.audWriteLink(linksKey(from), optOutKey(from), to, value);
    const written = await Promise.all(
      changes.map(async (c) => {
        const v = c.edge === null ? "" : `${c.edge.confidence}|${c.edge.source}`;
        const [a, b] = await Promise.all([side(c.a, c.b, v), side(c.b, c.a, v)]);
        if (a === 1 && b === 1) return true;
        // One side opted out (each side's check is atomic with its write): take back the side written.
        await Promise.all([
          a === 1 ? this.redis.hdel(linksKey(c.a), c.b) : null,
          b === 1 ? this.redis.hdel(linksKey(c.b), c.a) : null,
        ]);
        return false;
      }),
    );
    return changes.filter((_, i) => !written[i]);
  }

  async addCounters(keys: readonly string[], delta: Counters): Promise<void> {
    if (delta.size === 0 || keys.length === 0) return;
    const args: (string | number)[] = [COUNTERS_TTL_SEC];
    for (const [f, n] of delta) args.push(f, n);
    await Promise.all(keys.map((k) => this.redis.audAddCounters(countersKey(k), optOutKey(k), ...args)));
  }

  async deleteCounters(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await Promise.all(keys.map((k) => this.redis.del(countersKey(k))));
  }

  async optOut(keys: readonly string[], nowSec: number): Promise<number> {
    const removed = await Promise.all(
      keys.map((key) =>
        this.redis.audOptOut(
          profileKey(key),
          optOutKey(key),
          countersKey(key),
          linksKey(key),
          markersKey(key),
          noticesKey(key),
          nowSec,
        ),
      ),
    );
    let erased = 0;
    for (const r of removed) erased += r;
    return erased;
  }

  async isOptedOut(key: string): Promise<boolean> {
    return (await this.#gated(optOutKey(key), () => this.redis.exists(optOutKey(key)))) === 1;
  }

  async recordImpression(personKey: string, w: ImpressionWrite, nowSec: number): Promise<ImpressionOutcome> {
    const args: (string | number)[] = [
      nowSec,
      w.imp,
      w.dedupTtlSec,
      COUNTERS_TTL_SEC,
      w.notice?.nonce ?? "",
      w.notice?.uses ?? 0,
      w.notice?.expiresAtSec ?? 0,
      w.counters.lifetime.length,
      ...w.counters.lifetime,
    ];
    for (const b of w.counters.buckets) args.push(b.prefix, b.bucket, b.lo, b.span);
    const reply = await this.#gated(countersKey(personKey), () =>
      this.redis.audRecordImpression(
        countersKey(personKey),
        markersKey(personKey),
        noticesKey(personKey),
        optOutKey(personKey),
        ...args,
      ),
    );
    // Even a duplicate waits: its first count may be the one still on its way to the replica.
    if (this.#impressionReplicas > 0) await this.#replicated(countersKey(personKey));
    const outcome = IMPRESSION_OUTCOMES[String(reply)];
    if (outcome === undefined) throw new Error(`unexpected impression reply ${reply}`);
    return outcome;
  }

  /**
   * `run`, a command (or commands of one slot) for `key`, through the breaker of the master serving its slot
   * as the slot map stands. On a single Redis, or without breakers, just `run`.
   */
  #gated<T>(key: string, run: () => Promise<T>): Promise<T> {
    const gate = this.#gate;
    if (gate === null) return run();
    const node = (this.redis as Cluster).slots[calculateSlot(key)]?.[0] ?? "";
    if (!gate.allow(node)) return Promise.reject(new NodeDownError(node));
    return run().then(
      (v) => {
        gate.ok(node);
        return v;
      },
      (err: unknown) => {
        gate.failed(node);
        throw err;
      },
    );
  }

  /**
   * WAIT on the connection that wrote `key`: it covers every write that connection made before, so it must
   * go to the node serving the key's slot, not wherever the Cluster client would route a keyless command.
   */
  async #replicated(key: string): Promise<void> {
    const node = this.redis instanceof Cluster ? this.#masterOf(key) : this.redis;
    if (node === null) throw new NotReplicatedError(this.#impressionReplicas, 0);
    const acked = (await node.call("WAIT", this.#impressionReplicas, this.#impressionWaitMs)) as number;
    if (acked < this.#impressionReplicas) throw new NotReplicatedError(this.#impressionReplicas, acked);
  }

  /** The connection to the master serving `key`'s slot, as the Cluster client currently knows it. */
  #masterOf(key: string): Redis | null {
    const nodeKey = (this.redis as Cluster).slots[calculateSlot(key)]?.[0];
    return nodeKey === undefined ? null : this.#node(nodeKey);
  }

  #node(nodeKey: string): Redis | null {
    for (const node of (this.redis as Cluster).nodes("master")) {
      if (`${node.options.host}:${node.options.port}` === nodeKey) return node;
    }
    return null;
  }

  /**
   * The values of `keys`, read together with every other lookup's of this turn of the event loop: the
   * requests uWS hands over in one poll each queue theirs, and the queue leaves once they have all run
   * (setImmediate; process.nextTick would flush after each request). A single Redis gets one MGET per
   * turn; a Cluster one pipeline of GETs per master (an MGET may not span slots).
   */
  #read(keys: string[]): Promise<(Buffer | null)[]> {
    return new Promise((resolve, reject) => {
      if (this.#queued.length === 0) setImmediate(() => this.#flushReads());
      this.#queued.push({ keys, resolve, reject });
    });
  }

  #flushReads(): void {
    const queued = this.#queued;
    this.#queued = [];
    if (this.redis instanceof Cluster) {
      this.#clusterReads(queued);
      return;
    }
    // Several MGETs when a burst queues many keys, so that none holds Redis long; a lookup is never split.
    let group: QueuedRead[] = [];
    let size = 0;
    for (const q of queued) {
      if (size > 0 && size + q.keys.length > MAX_KEYS_PER_MGET) {
        this.#mget(group);
        group = [];
        size = 0;
      }
      group.push(q);
      size += q.keys.length;
    }
    this.#mget(group);
  }

  #mget(group: readonly QueuedRead[]): void {
    const keys: string[] = [];
    for (const q of group) for (const k of q.keys) keys.push(k);
    (this.redis as Redis).mgetBuffer(keys).then(
      (values) => {
        let at = 0;
        for (const q of group) {
          q.resolve(values.slice(at, at + q.keys.length));
          at += q.keys.length;
        }
      },
      (err) => {
        for (const q of group) q.reject(err);
      },
    );
  }

  /**
   * One pipeline of GETs per master, as the slot map stands: one write and one read per node per turn, as
   * auto-pipelining would give, but with redirections handled per key. A key answered with one (its slot
   * moved or is moving, or its master failed over) is read again on its own through the Cluster client,
   * which follows the redirection and refreshes the slot map.
   */
  #clusterReads(queued: QueuedRead[]): void {
    const cluster = this.redis as Cluster;
    // Per request: its values so far and how many are still owed; a request settles once, on its last key.
    const states = queued.map((q) => ({
      q,
      values: new Array<Buffer | null>(q.keys.length),
      owed: q.keys.length,
      failed: false,
    }));
    type Slot = { readonly state: (typeof states)[number]; readonly i: number };
    const settle = ({ state, i }: Slot, v: Buffer | null): void => {
      state.values[i] = v;
      if (--state.owed === 0 && !state.failed) state.q.resolve(state.values);
    };
    const fail = ({ state }: Slot, err: unknown): void => {
      if (state.failed) return;
      state.failed = true;
      state.q.reject(err);
    };
    const gate = this.#gate;
    const alone = (slot: Slot, nodeKey: string): void => {
      cluster.getBuffer(slot.state.q.keys[slot.i] as string).then(
        (v) => {
          gate?.ok(nodeKey);
          settle(slot, v);
        },
        (err) => {
          gate?.failed(nodeKey);
          fail(slot, err);
        },
      );
    };
    const byNode = new Map<string, Slot[]>();
    for (const state of states) {
      for (let i = 0; i < state.q.keys.length; i++) {
        const nodeKey = cluster.slots[calculateSlot(state.q.keys[i] as string)]?.[0] ?? "";
        const list = byNode.get(nodeKey);
        if (list === undefined) byNode.set(nodeKey, [{ state, i }]);
        else list.push({ state, i });
      }
    }
    for (const [nodeKey, list] of byNode) {
      if (gate !== null && !gate.allow(nodeKey)) {
        const down = new NodeDownError(nodeKey);
        for (const slot of list) fail(slot, down);
        continue;
      }
      const node = this.#node(nodeKey);
      if (node === null) {
        for (const slot of list) alone(slot, nodeKey);
        continue;
      }
      const pipe = node.pipeline();
      for (const { state, i } of list) pipe.getBuffer(state.q.keys[i] as string);
      pipe.exec().then(
        (results) => {
          let failed = false;
          for (let j = 0; j < list.length; j++) {
            const slot = list[j] as Slot;
            const [err, v] = results?.[j] ?? [new Error("no reply"), null];
            if (err === null) settle(slot, v as Buffer | null);
            else if (REDIRECTED.test(err.message)) alone(slot, nodeKey);
            else {
              failed = true;
              fail(slot, err);
            }
          }
          if (failed) gate?.failed(nodeKey);
          else gate?.ok(nodeKey);
        },
        (err) => {
          gate?.failed(nodeKey);
          for (const slot of list) fail(slot, err);
        },
      );
    }
  }

  async readCounters(personKey: string, _nowSec: number): Promise<Counters> {
    const key = countersKey(personKey);
    return countsOf(await this.#gated(key, () => this.redis.hgetall(key)));
  }

  async readCounterState(personKey: string, _nowSec: number): Promise<CounterState> {
    // Issued in one tick: one round trip with auto-pipelining (the two keys share a slot on a Cluster).
    const key = countersKey(personKey);
    const [raw, out] = await this.#gated(key, () =>
      Promise.all([this.redis.hgetall(key), this.redis.exists(optOutKey(personKey))]),
    );
    return { counters: countsOf(raw), optedOut: out === 1 };
  }

  /**
   * Masters with fewer connected replicas than impressions wait for ("host:port has 0 of 1"): on those,
   * every impression would be refused. Empty when impressions wait for none.
   */
  async replicaShortfall(): Promise<string[]> {
    if (this.#impressionReplicas === 0) return [];
    const masters = this.redis instanceof Cluster ? this.redis.nodes("master") : [this.redis];
    const out: string[] = [];
    for (const node of masters) {
      const info = await node.info("replication");
      const replicas = Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0);
      if (replicas < this.#impressionReplicas)
        out.push(`${node.options.host}:${node.options.port} has ${replicas} of ${this.#impressionReplicas}`);
    }
    return out;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
