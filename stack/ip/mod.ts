/**
 * Family-neutral IP: what both layers and the protocols above them share
 * (the stack context the layers take, the firewall hook types).
 *
 * @module
 */
export * from "./context.ts";
export * from "./hooks.ts";
