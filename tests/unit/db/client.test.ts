import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { resolveDatabaseTarget } from '../../../src/db/client.ts';

describe('resolveDatabaseTarget', () => {
  it('uses <DATA_DIR>/cnn-classroom.db when DATABASE_URL is unset', () => {
    expect(resolveDatabaseTarget({ DATA_DIR: 'some/data' })).toEqual({
      provider: 'sqlite',
      file: path.resolve('some/data', 'cnn-classroom.db'),
    });
  });

  it.each(['postgres', 'postgresql'])('uses PostgreSQL for a %s:// URL', (scheme) => {
    const target = resolveDatabaseTarget({
      DATA_DIR: 'd',
      DATABASE_URL: `${scheme}://lab:secret@db.example:5432/cnn?sslmode=require`,
    });

    expect(target).toEqual({
      provider: 'postgresql',
      connectionString: `${scheme}://lab:secret@db.example:5432/cnn?sslmode=require`,
      schema: 'public',
    });
  });

  it('takes the schema from ?schema= and removes it from the connection string', () => {
    expect(
      resolveDatabaseTarget({
        DATA_DIR: 'd',
        DATABASE_URL: 'postgresql://h/cnn?schema=course_2025',
      }),
    ).toEqual({
      provider: 'postgresql',
      connectionString: 'postgresql://h/cnn',
      schema: 'course_2025',
    });
  });

  it('refuses a schema name that is not a plain identifier', () => {
    expect(() =>
      resolveDatabaseTarget({ DATA_DIR: 'd', DATABASE_URL: 'postgresql://h/cnn?schema=a%20b' }),
    ).toThrow(/plain identifier/);
  });

  it('uses the named SQLite file for a file: URL', () => {
    expect(resolveDatabaseTarget({ DATA_DIR: 'd', DATABASE_URL: 'file:./x/dev.db' })).toEqual({
      provider: 'sqlite',
      file: path.resolve('x/dev.db'),
    });
    expect(resolveDatabaseTarget({ DATA_DIR: 'd', DATABASE_URL: 'file:///tmp/a%20b.db' })).toEqual({
      provider: 'sqlite',
      file: '/tmp/a b.db',
    });
  });
});

describe('DATABASE_URL in the configuration', () => {
  it('is optional', () => {
    expect(loadConfig({}).DATABASE_URL).toBeUndefined();
  });

  it('rejects a URL of another database', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://h/db' })).toThrow(/DATABASE_URL/);
  });
});
