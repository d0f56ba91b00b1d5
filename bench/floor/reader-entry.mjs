// The floor's reader thread: a worker thread does not inherit tsx's loader, so it registers it first.
import { register } from 'tsx/esm/api';

register();
await import('./reader.ts');
