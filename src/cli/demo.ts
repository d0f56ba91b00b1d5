import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { stackUp, formatResult } from '../../scripts/stack.js';
import { signToken, tokenShape } from '../api/auth.js';
import { loadConfig, type Config } from '../config.js';
import { auditCampaign, type Audit } from '../domain/audit.js';
import type { Logged } from '../domain/events.js';
import { createKafka } from '../infra/kafka/client.js';
import { readLog } from '../infra/kafka/reader.js';
import { partitionFor } from '../infra/kafka/partitioning.js';
import { migrate } from '../infra/prisma/migrate.js';
import { createPrisma } from '../infra/prisma/client.js';
import { CodeVault, openerFor } from '../infra/codeKeys/vault.js';
import { freePort } from '../net.js';
import { solvePowFast, type ChallengeShape } from './pow.js';
import { createClient, percentile, runPool, table } from './crowd.js';
import { checkInventory, loadDemoCodes } from './demoInventory.js';
import {
  DEMO_PRODUCT,
  providerOptions,
  providerReport,
  providerSettle,
  startDemoProvider,
  type ProviderFlags,
  type Settle,
} from './demoProvider.js';
import { watch } from './demoWatch.js';
import { Deadline, EXIT, ProgressLine, seconds, TimedOut } from './progress.js';

/**
 * `npm run demo`: brings the stack up, starts firstcome (every role, as its own process), creates a
 * campaign, sends a crowd with duplicate clicks, waits until the log is quiet, prints a summary and
 * checks I1–I3 against the log. Exits non-zero when an invariant fails, 124 when a wait outlives
 * `--timeout` (the server becoming ready; the log becoming quiet).
 */
const program = providerOptions(new Command())
  .name('demo')
  .option('--stock <n>', 'gifticons in the drop', (v) => Number(v), 1000)
  .option('--users <n>', 'distinct users in the crowd', (v) => Number(v), 20_000)
  .option('--double <fraction>', 'share of users who click twice', (v) => Number(v), 0.1)
  .option('--connections <n>', 'concurrent HTTP connections', (v) => Number(v), 128)
  .option(
    '--timeout <seconds>',
    'how long each wait may take (the server ready, the log quiet): then exit 124 with what it waited on',
    '60',
  )
  .option('--watch', 'after the summary, print the drop console URL with an admin token and keep the server up until Ctrl-C')
  .option(
    '--challenge <mode>',
    "'pow': the campaign asks for proof of work, and the crowd solves a challenge when enter asks for one",
    'off',
  )
  .option(
    '--issuance <mode>',
    "'inventory': a generated list of codes is loaded first, and each winner must hold one of it; 'provider': a provider simulator issues each winner's voucher",
    'minted',
  )
  .option('--difficulty <n>', 'maxnumber of the challenge with --challenge pow', (v) => Number(v), 1000)
  .parse();
const opts = program.opts<
  ProviderFlags & {
    stock: number;
    users: number;
    double: number;
    connections: number;
    timeout: string;
    watch?: boolean;
    challenge: string;
    difficulty: number;
    issuance: string;
  }
>();
if (!['minted', 'inventory', 'provider'].includes(opts.issuance)) {
  console.error(`demo --issuance: minted, inventory or provider, not ${opts.issuance}`);
  process.exit(2);
}
if (opts.challenge !== 'off' && opts.challenge !== 'pow') {
  console.error(`demo --challenge: off or pow, not ${opts.challenge}`);
  process.exit(2);
}
const timeoutS = seconds(program, '--timeout', opts.timeout)!;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const say = (s: string) => process.stdout.write(`${s}\n`);

type EnterBody = {
  data?: { enter: { rejection: string | null; entry: { ticket: string; status: string; position: number | null } | null } };
  errors?: { extensions?: { code?: string } }[];
};

async function main() {
  say('firstcome demo: a drop of %s gifticons, a crowd of %s users'.replace('%s', String(opts.stock)).replace('%s', String(opts.users)));
  say('\n1. the stack');
  for (const r of await stackUp({ root: ROOT })) say(`   ${formatResult(r)}`);
  const config = loadConfig();
  const migrated = await migrate(config.DATABASE_URL);
  say(`   database  ${migrated.applied.length ? `migrated (${migrated.applied.join(', ')})` : 'up to date'}`);

  const provider = opts.issuance === 'provider' ? await startDemoProvider(opts) : null;
  if (provider) say(`   ${provider.describe}`);

  say('\n2. firstcome (every role in one process)');
  const port = await freePort();
  const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    // the demo's whole crowd comes from this machine's one address, far past a real address's ceiling
    env: {
      RATE_LIMIT_IP_CEILING_PER_SEC: '0',
      ...process.env,
      ...provider?.env,
      PORT: String(port),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stopServer = async () => {
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    await provider?.sim.close();
  };
  process.on('SIGINT', () => void stopServer().then(() => process.exit(130)));
  const base = `http://127.0.0.1:${port}`;
  const starting = new Deadline(timeoutS);
  for (;;) {
    if (server.exitCode !== null) throw new Error('the server exited while starting');
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (starting.passed) {
      await stopServer();
      throw new TimedOut(timeoutS, `waiting for the server to answer ${base}/readyz (Kafka, Redis, Postgres and its consumers ready)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`   ready on ${base}`);

  try {
    const client = createClient(base, opts.connections);
    const admin = await signToken(config.JWT_SECRET, { sub: 'demo-admin', role: 'admin', expiresIn: '1h' }, tokenShape(config));
    const campaign = `demo-${randomBytes(4).toString('hex')}`;
    const created = await client.post<{ data?: unknown; errors?: unknown }>(
      admin,
      `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id status stock } }`,
      {
        i: {
          id: campaign,
          title: 'Demo drop',
          reward: 'Chicken gifticon',
          stock: opts.stock,
          closesAt: new Date(Date.now() + 3_600_000).toISOString(),
          ...(opts.challenge === 'pow' ? { challenge: { mode: 'POW', difficulty: opts.difficulty } } : {}),
          ...(opts.issuance === 'inventory' ? { issuance: 'INVENTORY' } : {}),
          ...(provider ? { issuance: 'PROVIDER', product: DEMO_PRODUCT } : {}),
        },
      },
    );
    if (created.body.errors) throw new Error(`createCampaign failed: ${JSON.stringify(created.body.errors)}`);
    const list = opts.issuance === 'inventory' ? await loadDemoCodes(client, admin, campaign, opts.stock) : null;
    if (list) say(`   ${list.size} brand codes generated and loaded (loadCodes)`);
    say(
      `\n3. campaign ${campaign}: ${opts.stock} gifticons, open now${opts.challenge === 'pow' ? `, proof of work at difficulty ${opts.difficulty}` : ''}`,
    );

    const users = Array.from({ length: opts.users }, (_, i) => `user-${i}`);
    const tokens = await Promise.all(users.map((sub) => signToken(config.JWT_SECRET, { sub, expiresIn: '1h' }, tokenShape(config))));
    const calls: number[] = [];
    users.forEach((_, i) => {
      calls.push(i);
      if ((i * 7919) % 1000 < opts.double * 1000) calls.push(i); // a deterministic tenth clicks twice
    });
    // the second click of a user comes a little later, mixed into the crowd
    for (let i = calls.length - 1; i > 0; i--) {
      if (calls[i] === calls[i - 1] && i + 50 < calls.length) [calls[i], calls[i + 50]] = [calls[i + 50]!, calls[i]!];
    }

    say(`\n4. the crowd: ${calls.length} enter calls over ${opts.connections} connections`);
    const bar = new SingleBar({
      format: '   {bar} {percentage}% | {value}/{total} calls | {rate} req/s | won {won} | sold-out {soldout}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 2000,
    });
    const latencies: number[] = [];
    const count = { accepted: 0, won: 0, lost: 0, queued: 0, soldOut: 0, closed: 0, errors: 0, required: 0, solved: 0, failed: 0 };
    const ENTER = `mutation($c: ID!, $s: String) { enter(campaignId: $c, solution: $s) { rejection entry { ticket status position } } }`;
    /** enter as a widget would: asked for proof of work, fetch a challenge, solve it, and enter again with the solution */
    const enter = async (u: number) => {
      const first = await client.post<EnterBody>(tokens[u]!, ENTER, { c: campaign });
      if (first.body.data?.enter.rejection !== 'CHALLENGE_REQUIRED') return first;
      count.required++;
      const c = await client.post<{ data?: { challenge: ChallengeShape | null } }>(
        tokens[u]!,
        `query($c: ID!) { challenge(campaignId: $c) { algorithm challenge salt signature maxnumber } }`,
        { c: campaign },
      );
      const challenge = c.body.data?.challenge;
      if (!challenge) return first;
      const solution = solvePowFast(challenge);
      count.solved++;
      const second = await client.post<EnterBody>(tokens[u]!, ENTER, { c: campaign, s: solution });
      if (second.body.data?.enter.rejection === 'CHALLENGE_FAILED') count.failed++;
      return { ...second, ms: first.ms + c.ms + second.ms };
    };
    let soldOutAt: number | null = null;
    const started = performance.now();
    bar.start(calls.length, 0, { rate: 0, won: 0, soldout: 0 });
    let done = 0;
    await runPool(calls, opts.connections, async (u) => {
      const r = await enter(u);
      latencies.push(r.ms);
      const e = r.body.data?.enter;
      if (!e) count.errors++;
      else if (e.rejection === 'SOLD_OUT') {
        count.soldOut++;
        soldOutAt ??= performance.now();
      } else if (e.rejection) count.closed++;
      else {
        count.accepted++;
        if (e.entry!.status === 'WON') count.won++;
        else if (e.entry!.status === 'LOST') count.lost++;
        else count.queued++;
      }
      if (++done % 200 === 0 || done === calls.length) {
        bar.update(done, { rate: Math.round(done / ((performance.now() - started) / 1000)), won: count.won, soldout: count.soldOut });
      }
    });
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    client.close();
    const crowdEnded = performance.now();

    say(`\n5. waiting until the log is quiet${provider ? ' and every winner is issued or parked' : ''}, then auditing it`);
    const issuing = provider && providerSettle(base, admin, campaign);
    const { audit, log } = await waitQuiet(config, campaign, () => server.exitCode, issuing ? issuing.settle : undefined);
    const report =
      provider && issuing
        ? await providerReport({
            base,
            config,
            campaign,
            audit,
            log,
            settled: issuing.state,
            sim: provider.sim,
            deadline: new Deadline(timeoutS),
            crowdEnded,
          })
        : null;

    latencies.sort((a, b) => a - b);
    say('');
    say(
      table([
        ['measure', 'value'],
        ['enter calls', calls.length],
        ['accepted (an entry)', count.accepted],
        ['  answered WON', count.won],
        ['  answered LOST', count.lost],
        ['  answered QUEUED', count.queued],
        ['rejected SOLD_OUT', count.soldOut],
        ...(opts.challenge === 'pow'
          ? [
              ['asked for proof of work (CHALLENGE_REQUIRED)', count.required],
              ['  challenges solved by the crowd', count.solved],
              ['  solutions refused (CHALLENGE_FAILED)', count.failed],
              ...(await challengeCounters(base)),
            ]
          : []),
        ['errors', count.errors],
        ['distinct entrants (log)', audit.entrants],
        ['winners (log)', audit.winners],
        ['gifticons issued (log)', audit.gifticons],
        ...(report?.rows ?? []),
        ['throughput', `${Math.round(calls.length / seconds)} req/s`],
        ['latency p50', `${percentile(latencies, 50).toFixed(1)} ms`],
        ['latency p99', `${percentile(latencies, 99).toFixed(1)} ms`],
        ['time to sell out', soldOutAt === null ? 'not sold out' : `${((soldOutAt - started) / 1000).toFixed(2)} s`],
      ]),
    );
    say('');
    const checks: [string, boolean][] = [
      ['I1 winners == min(stock, entrants)', !audit.problems.some((p) => p.startsWith('I1'))],
      ['I2 one entry per user, one gifticon per winner, unique codes', !audit.problems.some((p) => p.startsWith('I2'))],
      ['I3 winners are the first `stock` distinct users in log order', !audit.problems.some((p) => p.startsWith('I3'))],
      ['I6 every code sealed in the log, and each one opens', !audit.problems.some((p) => p.startsWith('I6')) && audit.unopened === 0],
    ];
    const inventory = list && checkInventory(audit, list);
    if (inventory)
      checks.push([
        `I6 each winner holds exactly one code of the loaded list, none twice (${inventory.outside} outside it, ${inventory.twice} twice)`,
        inventory.ok,
      ]);
    checks.push(...(report?.checks ?? []));
    for (const [name, ok] of checks) say(`   ${ok ? 'PASS' : 'FAIL'}  ${name}`);
    for (const p of [...audit.problems, ...(report?.notes ?? [])]) say(`         ${p}`);
    if (count.errors > 0) say(`   FAIL  ${count.errors} calls answered with an error`);
    const ok =
      (inventory?.ok ?? true) &&
      (report?.checks.every((c) => c[1]) ?? true) &&
      audit.ok &&
      audit.unopened === 0 &&
      count.errors === 0 &&
      audit.winners === Math.min(opts.stock, audit.entrants);
    say(ok ? '\nall invariants hold' : '\nan invariant FAILED');
    if (opts.watch) await watch(config, base, campaign, stopServer, () => server.exitCode, ok);
    await stopServer();
    say('the services stay up; `npm run stack:down` stops what the demo started');
    process.exit(ok ? 0 : 1);
  } catch (err) {
    await stopServer();
    throw err;
  }
}

/** The server's own challenge counters (/metrics): issued, solved, refused and reused. */
async function challengeCounters(base: string): Promise<[string, string][]> {
  const text = await fetch(`${base}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const value = (name: string) => /^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2] ?? '-';
  return ['issued', 'solved', 'refused', 'reused'].map((k) => [`  server: challenges ${k}`, value(`firstcome_challenges_${k}_total`)]);
}

/**
 * Reads the campaign's partition until the single writer has decided every entry in it (winners ==
 * min(stock, entrants)) and `settle` finds their issuance done (by default: a gifticon for each; a
 * PROVIDER drop's: a voucher or an open parked issuance each). Ends early when the server exits,
 * and at --timeout.
 */
async function waitQuiet(
  config: Config,
  campaign: string,
  serverExit: () => number | null,
  settle: Settle = async (_, a) => (a.gifticons === a.winners ? {} : null),
): Promise<{ audit: Audit; log: Logged[] }> {
  const kafka = createKafka(config, 'demo-audit');
  const partition = partitionFor(campaign, config.EVENT_PARTITIONS);
  const deadline = new Deadline(timeoutS);
  const line = new ProgressLine('   quiet');
  line.start(`reading partition ${partition}`);
  try {
    for (;;) {
      const log: Logged[] = [];
      await readLog(kafka, config.topics.events, (b) => void log.push(...b.filter((l) => l.event.campaignId === campaign)), {
        partitions: [partition],
      });
      const audit = auditCampaign(log);
      const due = Math.min(audit.stock, audit.entrants);
      const settled = audit.winners >= due ? await settle(log, audit) : null;
      if (settled) {
        line.update(1, `quiet: ${audit.winners} of ${due} winners, ${audit.gifticons} gifticons in the log`);
        // I2's unique codes and I6 are checked on the codes opened with the campaign's data key
        const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
        try {
          return { audit: auditCampaign(log, await openerFor(new CodeVault(prisma, config.CODE_KEYS), log), settled.facts), log };
        } finally {
          await prisma.$disconnect();
        }
      }
      line.update(
        due > 0 ? audit.winners / due : 0,
        `waiting for the writer of partition ${partition} to decide every entry, and issue each: ${audit.winners} of ${due} winners, ${audit.gifticons} gifticons in the log`,
      );
      const exit = serverExit();
      if (exit !== null) throw new Error(`the server exited (${exit}) while ${line.text}`);
      if (deadline.passed) throw new TimedOut(timeoutS, line.text);
      await new Promise((r) => setTimeout(r, deadline.cap(500)));
    }
  } finally {
    line.stop();
  }
}

main().catch((err) => {
  if (err instanceof TimedOut) {
    console.error(`demo ${err.message}`);
    process.exit(EXIT.timedOut);
  }
  console.error(err);
  process.exit(EXIT.failed);
});
