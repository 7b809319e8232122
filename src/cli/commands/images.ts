import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { openDatabase } from '../../db/database.ts';
import { parseIntOption } from '../options.ts';
import { formatMegabytesText } from '../text-table.ts';

/**
 * `images prune | keep | release`: the retention of stored photos (issue 19). `prune` deletes the
 * files of photos whose last submission is older than `IMAGE_RETENTION_DAYS` (or `--days`),
 * except those an instructor keeps for review (`keep <sha256...>`); their rows keep the hash, the
 * size and the outcome. Meant for a daily cron job or systemd timer.
 */
export function registerImages(program: Command, config: Config): void {
  const images = program
    .command('images')
    .description('stored photos: expire old ones (prune), keep some for review (keep, release)');

  images
    .command('prune')
    .description(
      `delete stored photos older than IMAGE_RETENTION_DAYS (now ${config.IMAGE_RETENTION_DAYS}; 0 keeps all) that nobody keeps`,
    )
    .option('--days <n>', 'retention in days instead of IMAGE_RETENTION_DAYS', parseIntOption)
    .option('--dry-run', 'report what would be deleted, delete nothing', false)
    .option('--json', 'print the result as JSON', false)
    .action(async (flags: { days?: number; dryRun: boolean; json: boolean }) => {
      const days = flags.days ?? config.IMAGE_RETENTION_DAYS;
      const db = await openDatabase(config);
      try {
        const result =
          days === 0
            ? { images: 0, bytes: 0, submissions: 0, kept: 0 }
            : await db.imageRetention.prune({ olderThanDays: days, dryRun: flags.dryRun });
        if (flags.json) {
          console.log(JSON.stringify({ days, dryRun: flags.dryRun, ...result }));
          return;
        }
        const verb = flags.dryRun ? 'would delete' : 'deleted';
        console.log(
          days === 0
            ? 'retention is 0 days: every photo is kept'
            : `${verb} ${result.images} photos (${formatMegabytesText(result.bytes)}) older than ${days} days, ` +
                `referenced by ${result.submissions} submissions; ${result.kept} expired photos kept for review`,
        );
      } finally {
        await db.close();
      }
    });

  images
    .command('keep')
    .description('keep photos past the retention period, for review')
    .argument('<sha256...>', 'SHA-256 of each photo (as in the submissions export)')
    .option('--note <text>', 'why they are kept')
    .action(async (hashes: string[], flags: { note?: string }) => {
      const db = await openDatabase(config);
      try {
        const added = await db.imageRetention.keep(
          hashes.map((h) => h.toLowerCase()),
          flags.note,
        );
        console.log(`kept ${added} photos (${hashes.length - added} were kept already)`);
      } finally {
        await db.close();
      }
    });

  images
    .command('release')
    .description('let kept photos expire again')
    .argument('<sha256...>', 'SHA-256 of each photo')
    .action(async (hashes: string[]) => {
      const db = await openDatabase(config);
      try {
        const released = await db.imageRetention.release(hashes.map((h) => h.toLowerCase()));
        console.log(`released ${released} photos`);
      } finally {
        await db.close();
      }
    });
}
