/**
 * The first step of `deno task test`: make sure the programs the
 * end-to-end tests drive are installed. As root it installs the missing
 * Debian packages (`apt-get update` once, then `apt-get install`); as
 * another user it names them and the tests that need them are ignored.
 * Exit code 1 only when an install as root failed.
 *
 *     deno run --allow-run --allow-read --allow-env --allow-sys tests/ensure_tools.ts [--check]
 *
 * `--check` only reports (never installs).
 *
 * @module
 */
import { missingTools, packagesFor } from "./tools.ts";

async function apt(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) console.error(new TextDecoder().decode(out.stderr).trim());
  return out.code === 0;
}

async function main(): Promise<number> {
  const missing = missingTools();
  if (missing.length === 0) return 0;
  const pkgs = packagesFor(missing);
  const what = `${missing.join(", ")} (Debian: ${pkgs.join(" ")})`;
  if (Deno.args.includes("--check") || Deno.uid() !== 0) {
    console.error(
      `end-to-end tools missing: ${what}; install them with ` +
        `\`apt-get install ${pkgs.join(" ")}\` as root; the tests that need them are ignored`,
    );
    return 0;
  }
  console.error(`installing the end-to-end tools that are missing: ${what}`);
  // The servers among them (Kea, radvd, ...) must not start as services in
  // the root namespace: the tests start each one in its own namespace.
  // policy-rc.d answering 101 is Debian's way to say "do not start".
  const policy = "/usr/sbin/policy-rc.d";
  let ownPolicy = false;
  try {
    Deno.writeTextFileSync(policy, "#!/bin/sh\nexit 101\n", { createNew: true, mode: 0o755 });
    ownPolicy = true;
  } catch {
    // One exists already: the machine's own policy applies.
  }
  let ok: boolean;
  try {
    ok = (await apt(["update", "-qq"])) &&
      (await apt(["install", "-y", "-qq", "--no-install-recommends", ...pkgs]));
  } finally {
    if (ownPolicy) Deno.removeSync(policy);
  }
  if (!ok) {
    console.error("apt-get failed: the end-to-end tests cannot run");
    return 1;
  }
  const still = missingTools();
  if (still.length > 0) {
    console.error(`still missing after apt-get install: ${still.join(", ")}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
