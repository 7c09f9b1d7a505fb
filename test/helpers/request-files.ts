// The bid requests the readers are held to: the repository's samples, and the peer corpus kept beside the
// repository, not in it (the tests that use it are skipped, and say so, where it is not there).
import { readdirSync, readFileSync } from "node:fs";

export const SAMPLES_DIR = new URL("../../openrtb-samples/", import.meta.url);
export const CORPUS_DIR = new URL("../../../shared/peer-corpus/requests/", import.meta.url);

/** Every .json file of `dir`, by name. */
export function filesOf(dir: URL): { name: string; bytes: Buffer }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((name) => ({ name, bytes: readFileSync(new URL(name, dir)) }));
}
