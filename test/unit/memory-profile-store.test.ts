import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import { describeProfileStoreContract } from "../contract/profile-store-contract.ts";

describeProfileStoreContract("in-memory", {
  fresh: async () => new MemoryProfileStore(),
  teardown: async () => {},
});
