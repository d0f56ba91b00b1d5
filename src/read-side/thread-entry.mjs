// The read side thread's entry: a worker thread does not inherit tsx's loader, so it registers it
// before loading the TypeScript source.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
