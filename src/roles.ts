import { registerApiPlugin, registerRole } from './app.js';

/** The roles that live outside src/ (the read side in projections/, the batch worker in batch/), and the API's admin fields over them (src/api/fields/). */
registerRole('projector', async () => (await import('../projections/index.js')).startProjectors);
registerApiPlugin(async () => (await import('./api/fields/readModel.js')).readModelPlugin);
registerApiPlugin(async () => (await import('./api/fields/parked.js')).parkedPlugin);
registerRole('worker', async () => (await import('../batch/index.js')).startWorker);
registerApiPlugin(async () => (await import('./api/fields/jobs.js')).jobsPlugin);
