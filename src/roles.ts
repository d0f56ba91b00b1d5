import type { ApiPluginFactory, ReadSideFactory, RoleContext, RoleHandle } from './plugin.js';

/**
 * What a role brings to a process. Every part is loaded only when used, so the read side's own
 * thread (src/read-side/thread.ts), which reads this registry too, loads no more than its processors.
 */
export interface RoleEntry {
  /** its part on the process's main thread, started with the shared clients */
  start: () => Promise<(ctx: RoleContext) => Promise<RoleHandle>>;
  /** its processors of the read side's one consumer host (src/read-side) */
  readSide?: () => Promise<ReadSideFactory>;
  /** GraphQL fields answered from its store; every API process serves them, whether it runs this role or not */
  apiFields?: readonly (() => Promise<ApiPluginFactory>)[];
}

/**
 * Every role, in the order a process starts them. The api role starts last: the GraphQL it serves
 * finds every other role of the process running. Adding a role is adding its entry here.
 */
const REGISTRY = {
  writer: {
    start: async () => (await import('./writer/role.js')).startWriterRole,
  },
  projector: {
    start: async () => (await import('../projections/index.js')).startProjectors,
    readSide: async () => (await import('../projections/index.js')).projectorProcessors,
    apiFields: [
      async () => (await import('./api/fields/readModel.js')).readModelPlugin,
      async () => (await import('./api/fields/parked.js')).parkedPlugin,
    ],
  },
  worker: {
    start: async () => (await import('../batch/index.js')).startWorker,
    readSide: async () => (await import('../batch/triggers.js')).triggerProcessors,
    apiFields: [async () => (await import('./api/fields/jobs.js')).jobsPlugin],
  },
  issuer: {
    start: async () => (await import('./issuer/role.js')).startIssuerRole,
  },
  api: {
    start: async () => (await import('./api/role.js')).startApi,
  },
} satisfies Record<string, RoleEntry>;

export type Role = keyof typeof REGISTRY;
export const ROLES = Object.keys(REGISTRY) as Role[];
/** Old names of roles, still taken (with a warning) for a release. */
export const ROLE_ALIASES: Readonly<Record<string, Role>> = { decider: 'writer' };

export function roleEntry(role: Role): RoleEntry {
  return REGISTRY[role];
}

/** `roles` in the registry's order, each once. */
export function inStartOrder(roles: readonly string[]): Role[] {
  return ROLES.filter((r) => roles.includes(r));
}

/**
 * A `--roles` list parsed: names trimmed, old names taken with a warning (`warn`), an unknown name
 * refused with the list of those there are.
 */
export function parseRoles(list: string, warn: (message: string) => void): Role[] {
  const names = list
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  return names.map((r) => {
    const alias = ROLE_ALIASES[r];
    if (alias) {
      warn(`the role "${r}" is now called "${alias}"; the old name will be refused in a later release`);
      return alias;
    }
    if (!(ROLES as string[]).includes(r)) throw new Error(`unknown role "${r}" (roles: ${ROLES.join(', ')})`);
    return r as Role;
  });
}

/** Of a process's roles, those with processors of the read side's consumer host. */
export function readSideRoles(roles: readonly string[]): Role[] {
  return inStartOrder(roles).filter((r) => roleEntry(r).readSide);
}

/** The GraphQL fields over every role's store, for the api role. */
export function apiFields(): (() => Promise<ApiPluginFactory>)[] {
  return ROLES.flatMap((r) => roleEntry(r).apiFields ?? []);
}
