import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import type * as backendModule from '../../../src/ml/backend.ts';

type BackendModule = typeof backendModule;

/** A fresh copy of the module, so its once-per-process choice starts over. */
async function freshBackendModule(): Promise<BackendModule> {
  vi.resetModules();
  return import('../../../src/ml/backend.ts');
}

function isInstalled(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const hasTfjsNode =
  isInstalled('@tensorflow/tfjs-node') || isInstalled('@tensorflow/tfjs-node-gpu');

/** The backend the configuration of `TFJS_BACKEND=value` forces, as the entry points pass it. */
const configured = (value: string) => ({
  backend: loadConfig({ TFJS_BACKEND: value }).TFJS_BACKEND,
});

describe('initBackend', () => {
  it('honours TFJS_BACKEND=cpu', async () => {
    const { initBackend } = await freshBackendModule();

    const info = await initBackend({ ...configured('cpu'), prefer: 'wasm' });

    expect(info).toEqual({ name: 'cpu', gpu: false });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('honours TFJS_BACKEND=wasm and can train convolutions there', async () => {
    const { initBackend } = await freshBackendModule();

    const info = await initBackend(configured('wasm'));
    const grad = tf.tidy(() =>
      tf
        .grad((f: tf.Tensor) =>
          tf.sum(tf.conv2d(tf.ones<tf.Rank.R4>([1, 4, 4, 1]), f as tf.Tensor4D, 1, 'valid')),
        )(tf.ones([3, 3, 1, 1]))
        .dataSync(),
    );

    expect(info).toEqual({ name: 'wasm', gpu: false });
    expect(tf.getBackend()).toBe('wasm');
    expect(Array.from(grad)).toEqual(new Array<number>(9).fill(4));
  });

  it('returns the first result on later calls', async () => {
    const { initBackend } = await freshBackendModule();

    const first = await initBackend(configured('cpu'));
    const second = await initBackend({ ...configured('wasm'), prefer: 'wasm' });

    expect(second).toBe(first);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('rejects an unknown TFJS_BACKEND, naming the allowed values', async () => {
    expect(() => loadConfig({ TFJS_BACKEND: 'webgpu' })).toThrow(/TFJS_BACKEND/);
    const { initBackend } = await freshBackendModule();

    await expect(initBackend({ backend: 'webgpu' as 'wasm' })).rejects.toThrow(
      "TFJS_BACKEND must be one of tensorflow, wasm, cpu; got 'webgpu'.",
    );
  });

  it.skipIf(hasTfjsNode)(
    'fails clearly when TFJS_BACKEND=tensorflow but tfjs-node is absent',
    async () => {
      const { initBackend } = await freshBackendModule();

      await expect(initBackend(configured('tensorflow'))).rejects.toThrow(
        /TFJS_BACKEND=tensorflow.*tfjs-node/,
      );
    },
  );

  it.skipIf(hasTfjsNode)('picks wasm automatically when tfjs-node is absent', async () => {
    const { initBackend } = await freshBackendModule();

    await expect(initBackend(configured(''))).resolves.toEqual({ name: 'wasm', gpu: false });
  });

  it('follows the preferred backend when the configuration says nothing', async () => {
    const { initBackend } = await freshBackendModule();

    await expect(initBackend({ ...configured(''), prefer: 'cpu' })).resolves.toEqual({
      name: 'cpu',
      gpu: false,
    });
  });
});
