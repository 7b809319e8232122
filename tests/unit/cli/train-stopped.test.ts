import { describe, expect, it } from 'vitest';
import { stoppedMessage } from '../../../src/cli/commands/train.ts';

describe("train's message when Ctrl-C stopped it", () => {
  it('points to the checkpoint only when this run has one', () => {
    expect(
      stoppedMessage('ck/lenet-mnist', { began: true, checkpointed: true, otherRunKept: false }),
    ).toBe('stopped; the same command resumes from ck/lenet-mnist');
    expect(
      stoppedMessage('ck/lenet-mnist', { began: true, checkpointed: false, otherRunKept: false }),
    ).toBe(
      'stopped before the first epoch ended: no checkpoint of this run to resume, the same command starts afresh',
    );
  });

  it('says nothing was written when it stopped while loading (a checkpoint there is untouched)', () => {
    expect(
      stoppedMessage('ck/lenet-mnist', { began: false, checkpointed: false, otherRunKept: false }),
    ).toBe('stopped before training began; nothing was written');
  });

  it("says a checkpoint of other settings (e.g. other --init-from weights) is still the other run's", () => {
    expect(
      stoppedMessage('ck/lenet-mnist', { began: true, checkpointed: false, otherRunKept: true }),
    ).toBe(
      "stopped before the first epoch ended: no checkpoint of this run to resume, the same command starts afresh (ck/lenet-mnist still holds the other run's checkpoint)",
    );
  });
});
