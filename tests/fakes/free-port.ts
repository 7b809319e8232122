/** A free TCP port on 127.0.0.1, for servers tests and scripts start (it is free when asked). */
import { createServer } from 'node:net';

/** Asks the system for a free loopback port, then releases it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
