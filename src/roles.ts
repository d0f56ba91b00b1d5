import { registerApiPlugin, registerRole } from './app.js';

/** Roles and API fields whose code lives outside src/: the read side (projections/) and the batch worker (batch/). */
registerRole('projector', async () => (await import('../projections/index.js')).startProjectors);
registerApiPlugin(async () => (await import('../projections/prisma-tables/resolvers.js')).readModelPlugin);
registerApiPlugin(async () => (await import('../projections/parked/resolvers.js')).parkedPlugin);
registerRole('worker', async () => (await import('../batch/index.js')).startWorker);
registerApiPlugin(async () => (await import('../batch/resolvers.js')).jobsPlugin);
