/**
 * `tapir reload`: ask a running tapir (through its control socket) to
 * re-read its config file and apply the difference, like `kill -HUP`, and
 * print what it did. Exit 1 when the file was rejected (its errors are
 * printed; nothing changed) or no tapir answered.
 *
 * @module
 */
import { defaultControlPath, queryControl } from "./control.ts";
import type { ReloadAnswer } from "./run.ts";

/** Options of {@link reloadCommand}. */
export interface ReloadOptions {
  control?: string;
  hostname?: string;
  json?: boolean;
}

/** Run `tapir reload`; the exit code. */
export async function reloadCommand(o: ReloadOptions): Promise<number> {
  const path = o.control ?? defaultControlPath(o.hostname ?? "tapir");
  let answer: ReloadAnswer;
  try {
    answer = await queryControl(path, "reload") as ReloadAnswer;
  } catch (e) {
    console.error(
      `tapir reload: cannot reach a running tapir at ${path} (${
        e instanceof Error ? e.message : e
      }); pass --control PATH or --hostname NAME`,
    );
    return 1;
  }
  if (o.json) {
    console.log(JSON.stringify(answer, null, 2));
    return answer.ok ? 0 : 1;
  }
  if (!answer.ok) {
    for (const e of answer.errors ?? []) console.error(e);
    console.error(`tapir reload: rejected (${answer.errors?.length ?? 0} errors); nothing changed`);
    return 1;
  }
  for (const l of answer.applied ?? []) console.log(`applied: ${l}`);
  for (const l of answer.notApplied ?? []) console.log(`needs a restart: ${l}`);
  if ((answer.applied?.length ?? 0) === 0 && (answer.notApplied?.length ?? 0) === 0) {
    console.log("no changes");
  }
  return 0;
}
