/** `npm test` uses the database DATABASE_URL names (README: "DATABASE_URL overrides the database everywhere"). */
import { afterEach, describe, expect, it } from "vitest";
import { testDatabaseName } from "../../packages/devstack/src/db.ts";

const saved = process.env.DATABASE_URL;
afterEach(() => {
  if (saved === undefined) delete process.env.DATABASE_URL;
  else process.env.DATABASE_URL = saved;
});

describe("the databases npm test uses", () => {
  it("without DATABASE_URL: switchboard_test, and switchboard_e2e / switchboard_netns for the stacks", () => {
    delete process.env.DATABASE_URL;
    expect(testDatabaseName()).toBe("switchboard_test");
    expect(testDatabaseName("e2e")).toBe("switchboard_e2e");
    expect(testDatabaseName("netns")).toBe("switchboard_netns");
  });

  it("with DATABASE_URL naming a database: that database, and the stacks' databases named after it", () => {
    process.env.DATABASE_URL = "postgres://ci@db.internal:6432/acme_ci";
    expect(testDatabaseName()).toBe("acme_ci");
    expect(testDatabaseName("e2e")).toBe("acme_ci_e2e");
    expect(testDatabaseName("netns")).toBe("acme_ci_netns");
  });

  it("with DATABASE_URL naming only a server: the defaults on that server", () => {
    process.env.DATABASE_URL = "postgres://ci@db.internal:6432";
    expect(testDatabaseName()).toBe("switchboard_test");
    expect(testDatabaseName("e2e")).toBe("switchboard_e2e");
  });
});
