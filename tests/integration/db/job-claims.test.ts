/**
 * issue 14: PostgreSQL as a job queue under concurrent workers (TEST_DATABASE_URL; skipped
 * without it, like the other database suites). Each worker has its own database client (its own
 * connections), as separate worker processes do, and claims at the same time as the others:
 * `FOR UPDATE SKIP LOCKED`. SQLite is not raced here: its driver waits for the file's write lock
 * synchronously, so clients in one process block each other's commits; the bot runs one embedded
 * worker per process, and the SQLite claim is covered by tests/integration/jobs/db-worker.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import {
  createTestDatabase,
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  type TestDatabase,
} from './helpers.ts';

const WORKERS = 6;
const LEASE_MS = 60_000;

for (const { provider, available } of PROVIDERS.filter((p) => p.provider === 'postgresql')) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`concurrent job claims on ${provider}`, () => {
    let testDb: TestDatabase;
    let workers: Database[];

    beforeEach(async () => {
      testDb = await createTestDatabase(provider);
      workers = [];
      for (let i = 0; i < WORKERS; i++) workers.push(await openDatabase(testDb.config));
    });

    afterEach(async () => {
      await Promise.all(workers.map((w) => w.close()));
      await testDb.cleanup();
    });

    /** Every worker claims until it finds nothing; the claims in the order they returned. */
    async function drain(leaseMs = LEASE_MS): Promise<{ id: number; owner: string }[]> {
      const claims: { id: number; owner: string }[] = [];
      await Promise.all(
        workers.map(async (w, i) => {
          const owner = `worker-${i}`;
          for (;;) {
            const { run } = await w.trainingRuns.claim(owner, leaseMs, 3);
            if (!run) return;
            expect(run.leaseOwner).toBe(owner);
            claims.push({ id: run.id, owner });
          }
        }),
      );
      return claims;
    }

    it('claims each of N jobs exactly once, with its lease set, however many workers race', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 30; i++) {
        const modelId = `model-${String(i).padStart(2, '0')}`;
        ids.push((await workers[0]!.trainingRuns.create({ modelId, params: { epochs: 1 } })).id);
      }
      const before = Date.now();
      const claims = await drain();
      expect(claims.map((c) => c.id).sort((a, b) => a - b)).toEqual(ids);
      expect(new Set(claims.map((c) => c.id)).size).toBe(ids.length);
      const rows = await Promise.all(ids.map((id) => workers[0]!.trainingRuns.get(id)));
      for (const row of rows) {
        const claim = claims.find((c) => c.id === row!.id)!;
        expect(row).toMatchObject({ status: 'running', leaseOwner: claim.owner, attempts: 1 });
        expect(row!.leaseExpiresAt!.getTime()).toBeGreaterThanOrEqual(before + LEASE_MS - 1000);
        expect(row!.startedAt).not.toBeNull();
      }
      // Nothing is left to claim.
      expect((await workers[1]!.trainingRuns.claim('late', LEASE_MS, 3)).run).toBeUndefined();
    });

    it('runs one job of a model at a time, even when every worker claims at once', async () => {
      for (let round = 0; round < 5; round++) {
        const model = `same-${round}`;
        const first = await workers[0]!.trainingRuns.create({ modelId: model, params: {} });
        const second = await workers[0]!.trainingRuns.create({ modelId: model, params: {} });
        const results = await Promise.all(
          workers.map((w, i) => w.trainingRuns.claim(`w${round}-${i}`, LEASE_MS, 3)),
        );
        const won = results.flatMap((r) => (r.run ? [r.run.id] : []));
        expect(won).toEqual([first.id]);
        expect((await workers[0]!.trainingRuns.get(second.id))?.status).toBe('queued');
        await workers[0]!.trainingRuns.finishSucceeded(
          first.id,
          `w${round}-${results.findIndex((r) => r.run)}`,
          {},
          '1',
        );
        // The next in line goes once the first has ended.
        const next = await workers[1]!.trainingRuns.claim('next', LEASE_MS, 3);
        expect(next.run?.id).toBe(second.id);
        await workers[1]!.trainingRuns.finishSucceeded(second.id, 'next', {}, '2');
      }
    });

    it('re-claims a job whose lease expired (its worker died), once, counting the attempt', async () => {
      const run = await workers[0]!.trainingRuns.create({ modelId: 'lenet-mnist', params: {} });
      // A short lease, but long enough for the next claim on a busy machine to find it held.
      const first = await workers[0]!.trainingRuns.claim('dead', 1500, 3);
      expect(first.run).toMatchObject({ id: run.id, attempts: 1, leaseOwner: 'dead' });
      // Still leased: nobody takes it.
      expect((await workers[1]!.trainingRuns.claim('early', LEASE_MS, 3)).run).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const claims = await drain();
      expect(claims).toHaveLength(1);
      expect(claims[0]!.id).toBe(run.id);
      const row = await workers[0]!.trainingRuns.get(run.id);
      expect(row).toMatchObject({ status: 'running', attempts: 2, leaseOwner: claims[0]!.owner });
      expect(row!.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now() + LEASE_MS - 5000);
      // The dead worker's heartbeat is refused: it lost the lease.
      expect(await workers[0]!.trainingRuns.heartbeat(run.id, 'dead', LEASE_MS)).toEqual({
        lost: true,
        cancel: false,
      });
    });

    it("runs one job of a model when a dead worker's job and a queued one are claimed at once", async () => {
      for (let round = 0; round < 4; round++) {
        const model = `mixed-${round}`;
        const expired = await workers[0]!.trainingRuns.create({ modelId: model, params: {} });
        await workers[0]!.trainingRuns.claim('dead', 20, 3);
        const queued = await workers[0]!.trainingRuns.create({ modelId: model, params: {} });
        await new Promise((resolve) => setTimeout(resolve, 60));
        const results = await Promise.all(
          workers.map((w, i) => w.trainingRuns.claim(`m${round}-${i}`, LEASE_MS, 3)),
        );
        const won = results.flatMap((r) => (r.run ? [r.run.id] : []));
        expect(won).toHaveLength(1);
        expect([expired.id, queued.id]).toContain(won[0]);
        const live = await Promise.all(
          [expired.id, queued.id].map((id) => workers[0]!.trainingRuns.get(id)),
        );
        expect(
          live.filter((r) => r!.status === 'running' && r!.leaseExpiresAt!.getTime() > Date.now()),
        ).toHaveLength(1);
      }
    });

    it('fails a job whose lease expired after its last try, reported by one worker only', async () => {
      const run = await workers[0]!.trainingRuns.create({ modelId: 'lenet-mnist', params: {} });
      await workers[0]!.trainingRuns.claim('a', 20, 2);
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect((await workers[0]!.trainingRuns.claim('b', 20, 2)).run?.attempts).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 60));
      // Every worker finds the spent lease at once.
      const results = await Promise.all(
        workers.map((w, i) => w.trainingRuns.claim(`c${i}`, LEASE_MS, 2)),
      );
      expect(results.every((r) => r.run === undefined)).toBe(true);
      const failed = results.flatMap((r) => r.failed);
      expect(failed.map((f) => f.id)).toEqual([run.id]);
      expect(failed[0]).toMatchObject({ status: 'failed', leaseOwner: null });
      expect(failed[0]!.error).toBe('worker stopped 2 times (last lease by b)');
    });
  });
}
