import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findDotEnv, initialLogLevel, loadConfig, readEnvironment } from '../../src/config.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'config-'));
  await writeFile(
    path.join(dir, '.env'),
    '# course machine\nCNN_SHARED_DATA=/srv/course/data\nDATA_DIR="/srv/cnn data"\nTFJS_BACKEND=cpu\n',
  );
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  it('finds the .env of the first folder that has one', () => {
    expect(findDotEnv([path.join(dir, 'none'), dir])).toBe(path.join(dir, '.env'));
    expect(findDotEnv([path.join(dir, 'none')])).toBeUndefined();
  });

  it('reads .env under the environment, which wins', () => {
    vi.stubEnv('TFJS_BACKEND', 'wasm');
    const config = loadConfig(readEnvironment(path.join(dir, '.env')));
    vi.unstubAllEnvs();

    expect(config.CNN_SHARED_DATA).toBe('/srv/course/data');
    expect(config.DATA_DIR).toBe('/srv/cnn data');
    expect(config.TFJS_BACKEND).toBe('wasm');
  });

  it('names every invalid variable', () => {
    expect(() => loadConfig({ TFJS_BACKEND: 'webgpu', WEB_PORT: '70000' })).toThrow(
      /TFJS_BACKEND[\s\S]*WEB_PORT|WEB_PORT[\s\S]*TFJS_BACKEND/,
    );
  });

  it('starts the log at LOG_LEVEL, silent under vitest, info otherwise', () => {
    expect(initialLogLevel({ LOG_LEVEL: 'debug', VITEST: 'true' })).toBe('debug');
    expect(initialLogLevel({ VITEST: 'true' })).toBe('silent');
    expect(initialLogLevel({ LOG_LEVEL: 'loud' })).toBe('info');
    expect(loadConfig({}).LOG_LEVEL).toBeUndefined();
  });

  it('keeps every model version unless MODEL_VERSIONS_KEEP names a count of at least 1', () => {
    expect(loadConfig({}).MODEL_VERSIONS_KEEP).toBeUndefined();
    expect(loadConfig({ MODEL_VERSIONS_KEEP: '5' }).MODEL_VERSIONS_KEEP).toBe(5);
    for (const bad of ['0', '-1', '2.5', 'all']) {
      expect(() => loadConfig({ MODEL_VERSIONS_KEEP: bad })).toThrow(/MODEL_VERSIONS_KEEP/);
    }
  });
});
