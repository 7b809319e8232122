// Worker threads start without the parent's TypeScript loader (tsx, vitest): register tsx here,
// then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
