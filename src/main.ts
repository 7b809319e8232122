import { loadConfig } from './config.ts';
import { logger } from './logger.ts';
import { initBackend } from './ml/backend.ts';
import { ModelRegistry } from './ml/registry.ts';

/**
 * `npm start`. The chat adapters (Telegram, Discord) are not part of this version yet: it checks
 * the configuration, starts the TF.js backend, loads every model once to prove it works, reports
 * what it found, and exits. A fatal start-up error exits with code 1.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const backend = await initBackend();
  const registry = new ModelRegistry(config.MODELS_DIR);
  const metas = await registry.list();
  for (const m of metas) await registry.get(m.id);
  logger.info(
    { backend, models: metas.map((m) => m.id) },
    'ready; no chat adapter is configured in this version',
  );
  console.log(`backend: ${backend.name}${backend.gpu ? ' (GPU)' : ''}`);
  for (const m of metas) {
    const acc = m.testAccuracy === undefined ? 'n/a' : `${(m.testAccuracy * 100).toFixed(2)}%`;
    console.log(`model ${m.id}: ${m.architecture} on ${m.dataset}, test accuracy ${acc}`);
  }
  console.log('Chat bots are not available yet: use bin/cnn-classroom (see README).');
  await registry.dispose();
}

main().catch((e: unknown) => {
  logger.fatal({ err: e }, 'start-up failed');
  console.error(`start-up failed: ${(e as Error).message}`);
  process.exit(1);
});
