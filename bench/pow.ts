import { Command } from 'commander';
import { solveChallenge } from 'altcha-lib/v1';
import { PowChallenges, type PowChallenge } from '../src/api/challenge.js';
import { median, table } from '../src/cli/crowd.js';
import { solvePowFast } from '../src/cli/pow.js';

/**
 * `npm run bench:pow`: what a proof-of-work challenge costs on this machine (issue 34).
 * - the client's side: solve times at each difficulty with altcha-lib's own solver (WebCrypto, one
 *   hash at a time, as an ALTCHA widget runs in a browser), and its hash rate, from which the
 *   expected (maxnumber / 2 hashes) and worst (maxnumber) times follow;
 * - the server's side: CPU per challenge issued and per solution checked (`PowChallenges.check`:
 *   parse, one SHA-256 and one HMAC), in µs, over many calls in this process.
 * A phone was not measured: size a difficulty for the slowest phone served, not for this machine.
 */
const opts = new Command()
  .option('--difficulties <list>', 'maxnumbers to solve at, comma-separated', '1000,10000,50000,100000,500000,1000000')
  .option('--seconds <s>', 'solving time to spend per difficulty (at least 3 solves each)', (v) => Number(v), 6)
  .option('--checks <n>', 'solutions checked for the server-side cost', (v) => Number(v), 3000)
  .parse()
  .opts<{ difficulties: string; seconds: number; checks: number }>();

const pow = new PowChallenges('bench-pow-secret-0123456789abcdef');
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function solveTimes(difficulty: number) {
  const times: number[] = [];
  let hashes = 0;
  let spent = 0;
  while (times.length < 3 || spent < opts.seconds * 1000) {
    const c = (await pow.issue('bench', `u${times.length}`, { mode: 'POW', difficulty }))!;
    const t0 = performance.now();
    const found = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber).promise;
    const ms = performance.now() - t0;
    if (!found) throw new Error(`no solution found at ${difficulty}`);
    times.push(ms);
    hashes += found.number + 1;
    spent += ms;
  }
  return { times, hashesPerSec: hashes / (spent / 1000) };
}

/** CPU µs per call of `fn` over `n` calls, run `concurrency` at a time (as a loaded API process does). */
async function cpuPerCall(n: number, fn: (i: number) => Promise<unknown>, concurrency = 50): Promise<number> {
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i += concurrency) await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, (_, j) => fn(i + j)));
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / n;
}

async function main() {
  const rows: (string | number)[][] = [];
  for (const d of opts.difficulties.split(',').map(Number)) {
    const { times, hashesPerSec } = await solveTimes(d);
    const sorted = [...times].sort((a, b) => a - b);
    rows.push([
      fmt(d),
      times.length,
      fmt(median(times)),
      fmt(sorted.at(-1)!),
      fmt(hashesPerSec),
      fmt(((d / 2) * 1000) / hashesPerSec),
      fmt((d * 1000) / hashesPerSec),
    ]);
    process.stdout.write(`solved at ${fmt(d)}: ${times.length} challenges\n`);
  }
  const solveTable = table([
    ['difficulty (maxnumber)', 'solves', 'median ms', 'max ms', 'hashes/s', 'expected ms (d/2)', 'worst ms (d)'],
    ...rows,
  ]);
  process.stdout.write(`\n${solveTable}\n\n`);

  // the server's side: challenges solved beforehand (a low difficulty: the check costs the same at any)
  const n = opts.checks;
  const challenges: PowChallenge[] = [];
  await cpuPerCall(200, () => pow.issue('bench', 'warm', { mode: 'POW', difficulty: 1000 })); // JIT warm-up
  const issueUs = await cpuPerCall(n, async (i) => {
    // by index: they finish in any order, and each is the user's own
    challenges[i] = (await pow.issue('bench', `u${i}`, { mode: 'POW', difficulty: 1000 }))!;
  });
  // solved with node:crypto: thousands with altcha's solver outlast the challenges' minute on a loaded machine
  const solutions = challenges.map((c) => solvePowFast(c));
  let held = 0;
  const checkUs = await cpuPerCall(n, async (i) => {
    if ('challenge' in (await pow.check(solutions[i]!, 'bench', `u${i}`))) held++;
  });
  if (held !== n) throw new Error(`${n - held} of ${n} good solutions were refused`);
  const wrongUs = await cpuPerCall(n, async (i) => pow.check(solutions[(i + 1) % n]!, 'bench', `u${i}`));
  const serverTable = table([
    ['server CPU per call', 'µs'],
    ['issue a challenge (createChallenge: salt, SHA-256, HMAC)', fmt(issueUs, 1)],
    ['check a good solution (parse, verifySolution, params)', fmt(checkUs, 1)],
    ["check another user's solution", fmt(wrongUs, 1)],
  ]);
  const footer = `node ${process.version}; altcha-lib v1 solveChallenge (WebCrypto); ${opts.seconds} s of solving per difficulty; ${n} checks; ${new Date().toISOString()}`;
  process.stdout.write(`${serverTable}\n\n${footer}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
