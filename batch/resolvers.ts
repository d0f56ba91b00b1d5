import type { ApiPluginFactory } from '../src/app.js';

// placeholder until the batch issue lands
export const jobsPlugin: ApiPluginFactory = async () => ({ resolvers: {}, stop: async () => undefined });
