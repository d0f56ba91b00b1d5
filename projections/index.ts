import type { RoleFactory } from '../src/app.js';

// placeholder until the read-side issue lands: the role starts and does nothing
export const startProjectors: RoleFactory = async () => ({ ready: () => true, stop: async () => undefined });
