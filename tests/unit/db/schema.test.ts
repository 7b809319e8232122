import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';

const MARKER = '// --- models (identical in both schema files) ---';

async function models(provider: string): Promise<string> {
  const text = await readFile(path.join(PROJECT_ROOT, 'prisma', provider, 'schema.prisma'), 'utf8');
  const at = text.indexOf(MARKER);
  if (at < 0) throw new Error(`${provider} schema lacks the models marker`);
  return text.slice(at);
}

describe('Prisma schemas', () => {
  it('declare the same models for SQLite and PostgreSQL', async () => {
    // The repositories use one client type for both providers.
    expect(await models('postgresql')).toBe(await models('sqlite'));
  });
});
