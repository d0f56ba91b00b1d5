import type { RoleFactory } from '../src/app.js';

// placeholder until the batch issue lands
export const startWorker: RoleFactory = async () => ({ ready: () => true, stop: async () => undefined });
