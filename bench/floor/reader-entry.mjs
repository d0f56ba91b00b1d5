// The floor's reader thread: a worker thread does not inherit tsx's loader, so it registers it
// first, then loads the reader of the client the server was started with.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.client === 'platformatic' ? './reader-platformatic.ts' : './reader.ts');
