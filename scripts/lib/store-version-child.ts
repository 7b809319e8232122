/**
 * A trainer worker in miniature, run as its own process by scripts/sqlite-reopen.ts and
 * tests/integration/db/sqlite-reopen.test.ts: opens the database of `<dataDir>`, stores model
 * version `<version>` of `alexnet-cifar10` with a shard of `<bytes>` pseudo-random bytes (seeded
 * by the version, so the reader can check them) through the repository API (1 MiB parts, each
 * its own transaction), closes it and exits 0.
 *
 *   node --import tsx scripts/lib/store-version-child.ts <dataDir> <version> <bytes>
 */
import path from 'node:path';
import { openDatabase } from '../../src/db/database.ts';

/** The shard bytes of a version: a cheap deterministic pattern, different per version. */
export function shardBytes(version: number, size: number): Buffer {
  const bytes = Buffer.alloc(size);
  let x = (version * 2_654_435_761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

if (import.meta.filename === path.resolve(process.argv[1] ?? '')) {
  const [dataDir, version, size] = process.argv.slice(2);
  if (dataDir === undefined || version === undefined || size === undefined) {
    throw new Error('usage: store-version-child.ts <dataDir> <version> <bytes>');
  }
  const db = await openDatabase({ DATA_DIR: dataDir });
  await db.modelVersions.register({
    modelId: 'alexnet-cifar10',
    version,
    path: path.join(dataDir, 'models', 'alexnet-cifar10', version),
    exclusive: true,
    files: [
      { name: 'model.json', bytes: Buffer.from('{}') },
      { name: 'group1-shard1of1.bin', bytes: shardBytes(Number(version), Number(size)) },
    ],
  });
  await db.close();
}
