import { Command, Option } from 'commander';
import { signToken, USER_ID } from '../api/auth.js';
import { loadConfig } from '../config.js';

const program = new Command()
  .name('token')
  .description('prints a JWT (HS256, signed with JWT_SECRET) for local use')
  .requiredOption('--sub <userId>', 'the user id (1-128 chars of A-Za-z0-9._:@-)')
  .addOption(new Option('--role <role>', 'admin marks an admin').choices(['admin']))
  .option('--expires <duration>', 'lifetime, e.g. 1h or 7d', '12h')
  .parse();

const opts = program.opts<{ sub: string; role?: 'admin'; expires: string }>();
if (!USER_ID.test(opts.sub)) program.error('--sub must be 1-128 chars of A-Za-z0-9._:@-');
const config = loadConfig();
process.stdout.write(`${await signToken(config.JWT_SECRET, { sub: opts.sub, role: opts.role, expiresIn: opts.expires })}\n`);
