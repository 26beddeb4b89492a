import type { Command } from "commander";
import type { Pitr } from "./client.ts";
import { formatBytes, formatDuration, formatTime, printJson, renderFields, renderTable } from "./output.ts";
import type { CommandKit } from "./restore-commands.ts";

/** The window's fields, then its base backups and gaps as tables: what `capydb pitr -o table` prints. */
export function pitrView(p: Pitr): string {
  const drill = p.last_drill;
  const parts = [
    renderFields([
      ["Available", p.available ? "yes" : "no"],
      ["Window", p.window_days ? `${p.window_days} day${p.window_days === 1 ? "" : "s"}` : "- (no WAL archive)"],
      ["Earliest restore time", formatTime(p.earliest_restore_time)],
      ["Latest restore time", formatTime(p.latest_restore_time)],
      ["Lag", p.lag_seconds === null ? "-" : formatDuration(p.lag_seconds * 1000)],
      ["Base backups", String(p.base_backups.length)],
      ["Gaps", String(p.gaps.length)],
      [
        "Last drill",
        drill
          ? `${formatTime(drill.at)} to ${formatTime(drill.restore_time)}: ${drill.ok ? "ok" : `failed (${drill.error ?? "no reason given"})`} in ${formatDuration(drill.seconds * 1000)}`
          : "-",
      ],
    ]),
  ];
  if (p.base_backups.length)
    parts.push(
      renderTable(
        ["BASE BACKUP", "STARTED", "FINISHED", "SIZE", "VERIFIED"],
        p.base_backups.map((b) => [
          b.id,
          formatTime(b.started_at),
          formatTime(b.finished_at),
          b.size_bytes === null ? "-" : formatBytes(b.size_bytes),
          formatTime(b.verified_at),
        ]),
      ),
    );
  if (p.gaps.length)
    parts.push(
      renderTable(
        ["GAP FROM", "GAP TO"],
        p.gaps.map((g) => [formatTime(g.from), g.to === null ? "(open: until the next base backup)" : formatTime(g.to)]),
      ),
    );
  return parts.join("\n");
}

/** `capydb pitr`: the project's restorable window (GET /v1/projects/{id}/pitr). */
export function registerPitrCommand(program: Command, kit: CommandKit): void {
  program
    .command("pitr")
    .description("the project's point-in-time window: earliest and latest restorable time, lag, base backups, gaps, last drill")
    .action(async (_o: unknown, cmd: Command) => {
      const { client, format, project } = kit.context(cmd);
      const res = await client.getPitr(project());
      if (format === "json") return printJson(kit.io, res.body);
      kit.io.out.write(pitrView(res.data.pitr));
      const p = res.data.pitr;
      if (!p.window_days) kit.note("The project's cluster has no WAL archive: restore from a backup instead (`capydb backups list`).");
      else if (!p.available) kit.note("The archive has no verified base backup yet: the window opens within minutes of the first one.");
      else kit.note(`Restore to any time in the window with \`capydb restore --restore-time <time> --wait\`.`);
    });
}
