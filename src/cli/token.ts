import { Command } from 'commander';
import { signToken, tokenShape, USER_ID } from '../api/auth.js';
import { loadConfig } from '../config.js';

const program = new Command()
  .name('token')
  .description(
    'prints a JWT (HS256, signed with JWT_SECRET; iss, aud and the role claim as JWT_ISSUER, JWT_AUDIENCE and JWT_ROLE_CLAIM say) for local use',
  )
  .requiredOption('--sub <userId>', 'the user id (1-128 chars of A-Za-z0-9._:@-)')
  .option(
    '--role <role>',
    'a role for the role claim, repeatable: admin marks an admin, CODES_READ_ROLE (codes:read) lets an admin read codes',
    (role: string, roles: string[]) => [...roles, role],
    [] as string[],
  )
  .option('--expires <duration>', 'lifetime, e.g. 1h or 7d', '12h')
  .parse();

const opts = program.opts<{ sub: string; role: string[]; expires: string }>();
if (!USER_ID.test(opts.sub)) program.error('--sub must be 1-128 chars of A-Za-z0-9._:@-');
for (const r of opts.role) if (!/^[A-Za-z0-9._:@/-]{1,64}$/.test(r)) program.error(`--role ${r}: 1-64 chars of A-Za-z0-9._:@/-`);
const config = loadConfig();
if (!config.jwtHs256) program.error('HS256 tokens are off: NODE_ENV=production with JWT_JWKS_URL and no JWT_SECRET');
process.stdout.write(
  `${await signToken(config.JWT_SECRET, { sub: opts.sub, role: [...new Set(opts.role)], expiresIn: opts.expires }, tokenShape(config))}\n`,
);
