// Redis store: profiles as msgpack under p:{<typed id>}; reads in one MGET, writes as an atomic Lua merge per key.
import { Redis, type Result } from "ioredis";
import { decodeProfile, encodeOps, liveOrNull, type MembershipOp, type Profile } from "./profile-codec.ts";
import { groupByKey, type ProfileStore } from "./profile-store.ts";

declare module "ioredis" {
  interface RedisCommander<Context> {
    audApplyMemberships(key: string, nowSec: number, ops: Buffer): Result<number, Context>;
  }
}

/** The braces are a Cluster hash tag: everything of one typed ID stays in one slot. */
export const profileKey = (typedId: string): string => `p:{${typedId}}`;

/**
 * The merge rules of profile-codec.ts `applyOps`, in Lua, so that concurrent loaders never lose each
 * other's writes. Redis' bundled cmsgpack reads and writes the same plain arrays as msgpackr.
 * ARGV[1] = now (epoch s); ARGV[2] = msgpack [[op (1 add, 0 remove), segment, expiresAt, source], ...].
 * Sets the key to expire with its last membership. Returns the membership count left.
 */
const APPLY_MEMBERSHIPS_LUA = `
local now = tonumber(ARGV[1])
local ops = cmsgpack.unpack(ARGV[2])
local kept, idx = {}, {}
local cur = redis.call('GET', KEYS[1])
if cur then
  local p = cmsgpack.unpack(cur)
  if type(p) ~= 'table' or p[1] ~= 1 or type(p[2]) ~= 'table' then
    return redis.error_reply('AUD_ERR_CODEC unsupported profile format at ' .. KEYS[1])
  end
  for _, m in ipairs(p[2]) do
    if m[2] == 0 or m[2] > now then kept[#kept + 1] = m; idx[m[1]] = #kept end
  end
end
for _, o in ipairs(ops) do
  local seg, exp = o[2], o[3]
  local i = idx[seg]
  if o[1] == 1 and (exp == 0 or exp > now) then
    local m = {seg, exp, o[4]}
    if i then kept[i] = m else kept[#kept + 1] = m; idx[seg] = #kept end
  elseif i then
    kept[i] = false
  end
end
local out, latest, forever = {}, 0, false
for i = 1, #kept do
  local m = kept[i]
  if m then
    out[#out + 1] = m
    if m[2] == 0 then forever = true elseif m[2] > latest then latest = m[2] end
  end
end
if #out == 0 then redis.call('DEL', KEYS[1]); return 0 end
local packed = cmsgpack.pack({1, out})
if forever then redis.call('SET', KEYS[1], packed) else redis.call('SET', KEYS[1], packed, 'EXAT', latest) end
return #out
`;

export interface RedisStoreOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** Keys changed per pipeline when loading, so a large load never builds one huge reply in memory. */
const WRITE_PIPELINE_KEYS = 1_000;

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
    this.redis.defineCommand("audApplyMemberships", { numberOfKeys: 1, lua: APPLY_MEMBERSHIPS_LUA });
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

  async applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<void> {
    const groups = [...groupByKey(ops)];
    for (let start = 0; start < groups.length; start += WRITE_PIPELINE_KEYS) {
      const pipeline = this.redis.pipeline();
      for (const [key, keyOps] of groups.slice(start, start + WRITE_PIPELINE_KEYS)) {
        pipeline.audApplyMemberships(profileKey(key), nowSec, encodeOps(keyOps));
      }
      const results = await pipeline.exec();
      for (const [err] of results ?? []) if (err) throw err;
    }
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
