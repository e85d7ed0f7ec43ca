/**
 * `npm ci` installs exactly what package-lock.json says, and refuses a lock that lacks a
 * package some locked package depends on, optional platform binaries included (the
 * Supabase CLI's `@supabase/cli-<os>-<cpu>`). npm drops those it cannot fetch on the
 * machine that writes the lock, so this holds the lock complete for every platform.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";

interface LockedPackage {
  version?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** Where Node would find `name` from the package at `path` (its own node_modules, then each parent's). */
function resolves(packages: Record<string, LockedPackage>, path: string, name: string): boolean {
  let at = path;
  for (;;) {
    if (packages[`${at ? `${at}/` : ""}node_modules/${name}`]) return true;
    if (!at) return false;
    const parent = at.lastIndexOf("/node_modules/");
    at = parent === -1 ? "" : at.slice(0, parent);
  }
}

for (const lockfile of ["package-lock.json", "tests/conformance/package-lock.json"]) {
  describe(lockfile, () => {
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, lockfile), "utf8")) as { lockfileVersion: number; packages: Record<string, LockedPackage> };

    it("is a v3 lockfile", () => expect(lock.lockfileVersion).toBe(3));

    it("locks every dependency and optional dependency of every locked package, for every platform", () => {
      const missing: string[] = [];
      for (const [path, pkg] of Object.entries(lock.packages)) {
        if (pkg.link) continue;
        for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
          if (!resolves(lock.packages, path, name)) missing.push(`${path || "(root)"} → ${name}`);
        }
      }
      expect(missing).toEqual([]);
    });
  });
}
