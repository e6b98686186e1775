/**
 * Config reuses the stack's types where they have the same shape (issue 10
 * item 10): RA settings and firewall table specs are declared once, in
 * stack/, and config/types.ts derives its names from them.
 */
import assert from "node:assert/strict";
import type { ChainConfig, FirewallConfig, RaConfig, TableConfig } from "../../config/mod.ts";
import type { RaAdvertSettings } from "../../stack/mod.ts";
import type {
  FirewallChainSpec,
  FirewallSpec,
  FirewallTableSpec,
} from "../../stack/firewall/mod.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;

Deno.test("config's RA and firewall types are the stack's, not second declarations", () => {
  // Compile-time: the same types (an alias, not a look-alike).
  const same: [
    Equal<FirewallConfig, FirewallSpec>,
    Equal<TableConfig, FirewallTableSpec>,
    Equal<ChainConfig, FirewallChainSpec>,
    Equal<
      Omit<RaConfig, "enabled" | "prefixes" | "delegated" | "routes">,
      Omit<RaAdvertSettings, "prefixes" | "routes">
    >,
  ] = [true, true, true, true];
  assert.deepEqual(same, [true, true, true, true]);
  // And the source declares none of them again.
  const src = Deno.readTextFileSync(new URL("../../config/types.ts", import.meta.url));
  for (
    const name of [
      "RaConfig",
      "RaPrefixConfig",
      "RaRdnssConfig",
      "RaDnsslConfig",
      "RaRouteConfig",
      "ChainConfig",
      "TableConfig",
      "FamilyTables",
      "FirewallConfig",
    ]
  ) {
    assert.doesNotMatch(src, new RegExp(`export interface ${name}\\b`), name);
    assert.match(src, new RegExp(`export type ${name}\\b`), name);
  }
});
