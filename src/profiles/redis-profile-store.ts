// Redis store: profiles as msgpack under p:{<typed id>}; reads in one MGET, writes as an atomic Lua merge per key.
import { Redis, type Result } from "ioredis";
import { type Counters, RETENTION_SEC } from "../capping/counters.ts";
import {
  decodeProfile,
  encodeOpsByKey,
  liveOrNull,
  type MembershipOp,
  type Profile,
} from "./profile-codec.ts";
import { type ApplyResult, groupByKey, type ProfileStore } from "./profile-store.ts";

declare module "ioredis" {
  interface RedisCommander<Context> {
    audApplyMemberships(...args: (string | number | Buffer)[]): Result<number[], Context>;
    audOptOut(
      profileKey: string,
      optOutKey: string,
      countersKey: string,
      nowSec: number,
    ): Result<number, Context>;
    audRecordImpression(
      countersKey: string,
      markerKey: string,
      ...args: (string | number)[]
    ): Result<number, Context>;
  }
}

/** The braces are a Cluster hash tag: everything of one typed ID stays in one slot. */
export const profileKey = (typedId: string): string => `p:{${typedId}}`;
/** Opt-out marker of one ID, in the same slot as its profile so one script sees both. */
export const optOutKey = (typedId: string): string => `o:{${typedId}}`;
/** A person's impression counters (a hash of counters.ts fields), in the person's slot. */
export const countersKey = (personKey: string): string => `fc:{${personKey}}`;
/** Set-once marker that makes counting an impression idempotent. */
export const impressionKey = (personKey: string, imp: string): string => `imp:{${personKey}}:${imp}`;

/** Counter hashes outlive their longest bucket retention, for lifetime counts: renewed on every impression. */
const COUNTERS_TTL_SEC = 400 * 86_400;

/**
 * The merge rules of profile-codec.ts `applyOps`, in Lua, so that concurrent loaders never lose each
 * other's writes. Redis' bundled cmsgpack reads and writes the same plain arrays as msgpackr.
 * KEYS = profile key, opt-out key, for each ID; ARGV[1] = now (epoch s); ARGV[2] = msgpack list with, for
 * each ID in KEYS order, its ops [[op (1 add, 0 remove), segment, expiresAt, source, generation, minGeneration], ...].
 * Several IDs per call amortise the script's fixed cost in bulk loads. Each key expires with its last
 * membership. Returns, per ID, the membership count left, or -1 when the ID opted out (nothing written).
 */
const APPLY_MEMBERSHIPS_LUA = `
local now = tonumber(ARGV[1])
local opsById = cmsgpack.unpack(ARGV[2])
local out = {}
for k = 1, #KEYS, 2 do
  local pkey, okey = KEYS[k], KEYS[k + 1]
  if redis.call('EXISTS', okey) == 1 then
    out[#out + 1] = -1
  else
    local rows = {}
    local cur = redis.call('GET', pkey)
    if cur then
      local p = cmsgpack.unpack(cur)
      if type(p) ~= 'table' or p[1] ~= 1 or type(p[2]) ~= 'table' then
        return redis.error_reply('AUD_ERR_CODEC unsupported profile format at ' .. pkey)
      end
      for _, m in ipairs(p[2]) do
        if m[2] == 0 or m[2] > now then rows[#rows + 1] = m end
      end
    end
    for _, o in ipairs(opsById[(k + 1) / 2]) do
      local seg, exp, gen, mingen = o[2], o[3], o[5], o[6]
      local kept = {}
      for _, m in ipairs(rows) do
        local mgen = m[4] or 0
        if m[1] ~= seg or (o[1] == 1 and mgen >= mingen and mgen ~= gen) then kept[#kept + 1] = m end
      end
      if o[1] == 1 and (exp == 0 or exp > now) then kept[#kept + 1] = {seg, exp, o[4], gen} end
      rows = kept
    end
    local latest, forever = 0, false
    for _, m in ipairs(rows) do
      if m[2] == 0 then forever = true elseif m[2] > latest then latest = m[2] end
    end
    if #rows == 0 then
      redis.call('DEL', pkey)
    elseif forever then
      redis.call('SET', pkey, cmsgpack.pack({1, rows}))
    else
      redis.call('SET', pkey, cmsgpack.pack({1, rows}), 'EXAT', latest)
    end
    out[#out + 1] = #rows
  end
end
return out
`;

/** Erases one ID's profile and counters and marks it opted out, in one step. Returns 1 when a profile was removed. */
const OPT_OUT_LUA = `
local removed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[1])
return removed
`;

/**
 * Counts an impression exactly once: the SET NX of the impression's marker and the counter increments are
 * one atomic step, so a retried or duplicated notice (nurl and burl both firing) is counted once.
 * KEYS = counters hash, marker; ARGV = dedup TTL s, hash TTL s, now (epoch s), fields to increment...
 * Buckets past their retention (counters.ts RETENTION_SEC) are dropped on the way. Returns 1 counted, 0 duplicate.
 */
const RECORD_IMPRESSION_LUA = `
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local now = tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
local keep = { ${Object.entries(RETENTION_SEC)
  .map(([g, sec]) => `["${g}"] = ${sec}`)
  .join(", ")} }
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local g, b = string.match(f, '|(%d+)|(%d+)$')
  if g and (keep[g] == nil or (tonumber(b) + 1) * tonumber(g) <= now - keep[g]) then redis.call('HDEL', KEYS[1], f) end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
`;

export interface RedisStoreOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** IDs merged per script call, and per pipeline: bounds both the script's run time and reply sizes. */
const IDS_PER_SCRIPT = 50;
const WRITE_PIPELINE_IDS = 2_000;

export class RedisProfileStore implements ProfileStore {
  readonly kind = "redis";
  readonly redis: Redis;

  constructor(opts: RedisStoreOptions) {
    this.redis = new Redis(opts.url, {
      // Lookups issued in the same tick (many requests) leave in one write: fewer syscalls, one round trip.
      enableAutoPipelining: true,
      // A bid request cannot wait for a reconnect: fail at once and answer degraded instead of queueing.
      enableOfflineQueue: false,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: opts.connectTimeoutMs,
      // Retrying a timed-out read would only push it past the bidder's deadline.
      maxRetriesPerRequest: 0,
      // Keep reconnecting with a capped back-off; readiness reports the state meanwhile.
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
      lazyConnect: true,
    });
    this.redis.defineCommand("audApplyMemberships", { lua: APPLY_MEMBERSHIPS_LUA });
    this.redis.defineCommand("audOptOut", { numberOfKeys: 3, lua: OPT_OUT_LUA });
    this.redis.defineCommand("audRecordImpression", { numberOfKeys: 2, lua: RECORD_IMPRESSION_LUA });
    // Errors surface through commands and readiness; an unhandled 'error' event would kill the process.
    this.redis.on("error", () => {});
  }

  /** Connects, resolving once Redis answers; rejects with the connection error otherwise. */
  async connect(): Promise<void> {
    await this.redis.connect();
  }

  async readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]> {
    if (keys.length === 0) return []; // MGET with no keys is an error
    const redisKeys = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) redisKeys[i] = profileKey(keys[i] as string);
    const values = await this.redis.mgetBuffer(redisKeys);
    const out = new Array<Profile | null>(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      out[i] = v == null ? null : liveOrNull(decodeProfile(v, nowSec));
    }
    return out;
  }

  async applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult> {
    const groups = [...groupByKey(ops)];
    const skippedKeys: string[] = [];
    for (let start = 0; start < groups.length; start += WRITE_PIPELINE_IDS) {
      const slice = groups.slice(start, start + WRITE_PIPELINE_IDS);
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < slice.length; i += IDS_PER_SCRIPT) {
        const part = slice.slice(i, i + IDS_PER_SCRIPT);
        const keys: string[] = [];
        for (const [key] of part) keys.push(profileKey(key), optOutKey(key));
        pipeline.audApplyMemberships(
          keys.length,
          ...keys,
          nowSec,
          encodeOpsByKey(part.map(([, ops]) => ops)),
        );
      }
      const results = (await pipeline.exec()) ?? [];
      for (let c = 0; c < results.length; c++) {
        const [err, counts] = results[c] as [Error | null, number[]];
        if (err) throw err;
        for (let j = 0; j < counts.length; j++) {
          if (counts[j] === -1) skippedKeys.push((slice[c * IDS_PER_SCRIPT + j] as [string, unknown])[0]);
        }
      }
    }
    return { skippedKeys };
  }

  async optOut(keys: readonly string[], nowSec: number): Promise<number> {
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.audOptOut(profileKey(key), optOutKey(key), countersKey(key), nowSec);
    let erased = 0;
    for (const [err, removed] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      erased += removed as number;
    }
    return erased;
  }

  async isOptedOut(key: string): Promise<boolean> {
    return (await this.redis.exists(optOutKey(key))) === 1;
  }

  async recordImpression(
    personKey: string,
    imp: string,
    fields: readonly string[],
    dedupTtlSec: number,
    nowSec: number,
  ): Promise<boolean> {
    const counted = await this.redis.audRecordImpression(
      countersKey(personKey),
      impressionKey(personKey, imp),
      dedupTtlSec,
      COUNTERS_TTL_SEC,
      nowSec,
      ...fields,
    );
    return counted === 1;
  }

  async readCounters(personKey: string, _nowSec: number): Promise<Counters> {
    const raw = await this.redis.hgetall(countersKey(personKey));
    const out = new Map<string, number>();
    for (const [f, v] of Object.entries(raw)) out.set(f, Number(v));
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
