// SipHash-2-4 (Aumasson and Bernstein), with 64-bit output and with the 128-bit output of their reference
// implementation ("SipHash128": v1 ^= 0xee at the start, v2 ^= 0xee before finalising, a second
// finalisation after v1 ^= 0xdd). It keys the notice token's MAC, which runs on the bid path, so it is
// written for speed in plain JavaScript: each 64-bit word is two 32-bit locals (hi, lo), nothing is
// allocated per call or per round, and the result is written into a buffer the caller owns. A library with
// an object per 64-bit value spends most of its time allocating (about 2.2 µs for 80 bytes).

/** A 128-bit SipHash key as four 32-bit words: k0 (lo, hi), k1 (lo, hi), each little-endian as in the key bytes. */
export type SipKey = Int32Array;

/** The key words of a 16-byte key. */
export function sipKey(key: Uint8Array): SipKey {
  if (key.length !== 16) throw new RangeError(`SipHash key must be 16 bytes, got ${key.length}`);
  return Int32Array.of(u32le(key, 0), u32le(key, 4), u32le(key, 8), u32le(key, 12));
}

/** SipHash-2-4 of `data[start, end)` with 128-bit output, written as 16 bytes to `out` at `outAt`. */
export function sipHash128(
  key: SipKey,
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outAt: number,
): void {
  sipHash(key, data, start, end, out, outAt, true);
}

/** SipHash-2-4 of `data[start, end)` with 64-bit output, written as 8 bytes to `out` at `outAt`. */
export function sipHash64(
  key: SipKey,
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outAt: number,
): void {
  sipHash(key, data, start, end, out, outAt, false);
}

function u32le(d: Uint8Array, i: number): number {
  return (
    (d[i] as number) |
    ((d[i + 1] as number) << 8) |
    ((d[i + 2] as number) << 16) |
    ((d[i + 3] as number) << 24) |
    0
  );
}

function putU32le(d: Uint8Array, i: number, v: number): void {
  d[i] = v;
  d[i + 1] = v >>> 8;
  d[i + 2] = v >>> 16;
  d[i + 3] = v >>> 24;
}

function sipHash(
  key: SipKey,
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outAt: number,
  wide: boolean,
): void {
  const k0l = key[0] as number;
  const k0h = key[1] as number;
  const k1l = key[2] as number;
  const k1h = key[3] as number;
  // v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom", v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes".
  let v0h = k0h ^ 0x736f6d65;
  let v0l = k0l ^ 0x70736575;
  let v1h = k1h ^ 0x646f7261;
  let v1l = k1l ^ (wide ? 0x6e646f6d ^ 0xee : 0x6e646f6d);
  let v2h = k0h ^ 0x6c796765;
  let v2l = k0l ^ 0x6e657261;
  let v3h = k1h ^ 0x74656462;
  let v3l = k1l ^ 0x79746573;
  // Temporaries of the rounds, declared once. Every value stays a signed 32-bit integer, so that V8 keeps it
  // in a register as one. An addition's carry out of the low words is the full adder's (a & b) | ((a | b) &
  // ~sum) in bit 31, not a comparison: the carries of a MAC's input are random, and a branch on them would be
  // mispredicted half the time (that alone tripled the time of an 80-byte message).
  let lo = 0;
  let th = 0;
  let tl = 0;

  const length = end - start;
  const lastWordAt = end - (length & 7);
  let i = start;
  // Every 8-byte word, then the last: the 0-7 bytes left and the length's low byte in the top byte.
  for (;;) {
    let mh: number;
    let ml: number;
    const last = i === lastWordAt;
    if (!last) {
      ml = u32le(data, i);
      mh = u32le(data, i + 4);
      i += 8;
    } else {
      const rest = end - i;
      ml = 0;
      mh = (length & 0xff) << 24;
      for (let b = 0; b < rest; b++) {
        const byte = data[i + b] as number;
        if (b < 4) ml |= byte << (8 * b);
        else mh |= byte << (8 * (b - 4));
      }
    }
    v3h ^= mh;
    v3l ^= ml;
    // The SipRound is written out here and again in the finalisation: as a function it would have to hand
    // back eight 32-bit values, through an object or module state, which is what this file avoids.
    for (let r = 0; r < 2; r++) {
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      lo = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (((v0l & v1l) | ((v0l | v1l) & ~lo)) >>> 31)) | 0;
      v0l = lo;
      th = (v1h << 13) | (v1l >>> 19);
      tl = (v1l << 13) | (v1h >>> 19);
      v1h = th ^ v0h;
      v1l = tl ^ v0l;
      th = v0h;
      v0h = v0l;
      v0l = th;
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      lo = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (((v2l & v3l) | ((v2l | v3l) & ~lo)) >>> 31)) | 0;
      v2l = lo;
      th = (v3h << 16) | (v3l >>> 16);
      tl = (v3l << 16) | (v3h >>> 16);
      v3h = th ^ v2h;
      v3l = tl ^ v2l;
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      lo = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (((v0l & v3l) | ((v0l | v3l) & ~lo)) >>> 31)) | 0;
      v0l = lo;
      th = (v3h << 21) | (v3l >>> 11);
      tl = (v3l << 21) | (v3h >>> 11);
      v3h = th ^ v0h;
      v3l = tl ^ v0l;
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      lo = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (((v2l & v1l) | ((v2l | v1l) & ~lo)) >>> 31)) | 0;
      v2l = lo;
      th = (v1h << 17) | (v1l >>> 15);
      tl = (v1l << 17) | (v1h >>> 15);
      v1h = th ^ v2h;
      v1l = tl ^ v2l;
      th = v2h;
      v2h = v2l;
      v2l = th;
    }
    v0h ^= mh;
    v0l ^= ml;
    if (last) break;
  }

  // Finalisation: 4 rounds, output v0 ^ v1 ^ v2 ^ v3; for 128 bits, again after v1 ^= 0xdd.
  v2l ^= wide ? 0xee : 0xff;
  for (let half = 0; half < (wide ? 2 : 1); half++) {
    if (half === 1) v1l ^= 0xdd;
    for (let r = 0; r < 4; r++) {
      lo = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (((v0l & v1l) | ((v0l | v1l) & ~lo)) >>> 31)) | 0;
      v0l = lo;
      th = (v1h << 13) | (v1l >>> 19);
      tl = (v1l << 13) | (v1h >>> 19);
      v1h = th ^ v0h;
      v1l = tl ^ v0l;
      th = v0h;
      v0h = v0l;
      v0l = th;
      lo = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (((v2l & v3l) | ((v2l | v3l) & ~lo)) >>> 31)) | 0;
      v2l = lo;
      th = (v3h << 16) | (v3l >>> 16);
      tl = (v3l << 16) | (v3h >>> 16);
      v3h = th ^ v2h;
      v3l = tl ^ v2l;
      lo = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (((v0l & v3l) | ((v0l | v3l) & ~lo)) >>> 31)) | 0;
      v0l = lo;
      th = (v3h << 21) | (v3l >>> 11);
      tl = (v3l << 21) | (v3h >>> 11);
      v3h = th ^ v0h;
      v3l = tl ^ v0l;
      lo = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (((v2l & v1l) | ((v2l | v1l) & ~lo)) >>> 31)) | 0;
      v2l = lo;
      th = (v1h << 17) | (v1l >>> 15);
      tl = (v1l << 17) | (v1h >>> 15);
      v1h = th ^ v2h;
      v1l = tl ^ v2l;
      th = v2h;
      v2h = v2l;
      v2l = th;
    }
    putU32le(out, outAt + 8 * half, v0l ^ v1l ^ v2l ^ v3l);
    putU32le(out, outAt + 8 * half + 4, v0h ^ v1h ^ v2h ^ v3h);
  }
}
