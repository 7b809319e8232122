import { defineConfig } from 'prisma/config';

// `prisma generate` needs no database and no native engine, but the CLI checks that the schema
// engine binary exists and tries to download it otherwise, which fails offline. Pointing it at
// any existing file satisfies the check; no command this project runs executes it (migrations
// are plain SQL applied by src/db/migrate.ts).
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
// No update check over the network (machines here reach only the package registries).
process.env.CHECKPOINT_DISABLE ??= '1';

// Two schemas, one per provider: `npm run db:generate` passes each with --schema.
export default defineConfig({
  schema: 'prisma/sqlite/schema.prisma',
});
