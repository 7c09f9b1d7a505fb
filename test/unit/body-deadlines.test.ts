// The body timeout's sweep: never before the timeout, at most two sweep periods after it, whatever the order
// requests leave the list in.
import { describe, expect, it } from "vitest";
import { BodyDeadlines, type BodyWait, sweepPeriodMs } from "../../src/http/body-deadlines.ts";

interface Req extends BodyWait {
  readonly name: string;
}
const req = (name: string): Req => ({ name, since: -1, prev: null, next: null });

function setup(timeoutMs: number) {
  const expired: string[] = [];
  const d = new BodyDeadlines<Req>(timeoutMs, (r) => expired.push(r.name));
  return { d, expired };
}

describe("BodyDeadlines", () => {
  it("sweeps every tenth of the timeout, between 10 and 250 ms", () => {
    expect(sweepPeriodMs(100)).toBe(10);
    expect(sweepPeriodMs(800)).toBe(80);
    expect(sweepPeriodMs(5_000)).toBe(250);
    expect(sweepPeriodMs(600_000)).toBe(250);
  });

  it("expires a request only once the timeout has passed since a sweep after its arrival", () => {
    const { d, expired } = setup(1_000);
    d.sweep(0);
    d.add(req("a")); // arrived between the sweeps at 0 and 100
    d.sweep(100); // stamped 100: it has waited at most this long
    d.sweep(1_050);
    expect(expired).toEqual([]);
    d.sweep(1_100);
    expect(expired).toEqual(["a"]);
    expect(d.size).toBe(0);
  });

  it("never expires early after a late sweep (a busy event loop)", () => {
    const { d, expired } = setup(1_000);
    d.sweep(0);
    d.add(req("a"));
    d.sweep(5_000); // the first sweep in 5 s: "a" may have arrived just now
    expect(expired).toEqual([]);
    d.sweep(5_999);
    expect(expired).toEqual([]);
    d.sweep(6_000);
    expect(expired).toEqual(["a"]);
  });

  it("expires in arrival order and leaves the later ones listed", () => {
    const { d, expired } = setup(1_000);
    d.add(req("a"));
    d.add(req("b"));
    d.sweep(0);
    d.add(req("c"));
    d.sweep(500);
    d.sweep(1_000);
    expect(expired).toEqual(["a", "b"]);
    expect(d.size).toBe(1);
    d.sweep(1_500);
    expect(expired).toEqual(["a", "b", "c"]);
  });

  it("forgets requests removed from the head, the middle or the tail, and removing twice is harmless", () => {
    const { d, expired } = setup(1_000);
    const [a, b, c, e] = [req("a"), req("b"), req("c"), req("e")];
    for (const r of [a, b, c, e]) d.add(r);
    d.remove(b);
    d.remove(a);
    d.remove(e);
    d.remove(e);
    expect(d.size).toBe(1);
    d.sweep(0);
    d.sweep(1_000);
    expect(expired).toEqual(["c"]);
    d.remove(c);
    expect(d.size).toBe(0);
    d.add(a);
    expect(d.size).toBe(1);
  });
});
