import type { ApiPluginFactory } from '../../src/app.js';

// placeholder until the read-side issue lands
export const readModelPlugin: ApiPluginFactory = async () => ({ resolvers: {}, stop: async () => undefined });
