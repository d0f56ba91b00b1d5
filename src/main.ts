import { Command, Option } from 'commander';
import { loadConfigOrExit } from './config.js';
import { startApp } from './app.js';
import { DatabaseBehindError } from './infra/prisma/prepare.js';
import { MigrationError } from './infra/prisma/migrate.js';
import { logger } from './logger.js';
import { parseRoles, ROLES, type Role } from './roles.js';

const program = new Command()
  .name('firstcome')
  .description('first-come-first-served gift drops: API, single writer, projectors and batch worker')
  .addOption(
    new Option('--roles <roles>', `comma-separated roles (${ROLES.join(', ')})`)
      .default(ROLES.join(','))
      .argParser((v) => parseRoles(v, (message) => logger.warn(message))),
  );

async function main() {
  program.parse();
  const { roles } = program.opts<{ roles: Role[] | string }>();
  const list = (typeof roles === 'string' ? roles.split(',') : roles) as Role[];
  const config = loadConfigOrExit();
  const app = await startApp(config, list);
  let signals = 0;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (++signals > 1) process.exit(1);
      app.stop().then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

main().catch((err) => {
  // the operator has to act (run the migrations, fix one): one plain line, and no restart will help
  if (err instanceof DatabaseBehindError || err instanceof MigrationError) {
    console.error(`firstcome refuses to start: ${err.message}`);
    process.exit(2);
  }
  logger.fatal({ err }, 'failed to start');
  process.exit(1);
});
