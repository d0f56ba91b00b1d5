import { cryptoMinter } from '../src/domain/campaign.js';
import { newDataKey, openCode, sealCode } from '../src/domain/sealing.js';

/**
 * `npm run bench:seal`: the CPU the sealing of codes adds per winner (AES-256-GCM of one minted
 * code under its campaign's data key), beside minting it, and per open (what a code read costs the
 * API). Process CPU over a loop, after a warm-up.
 */
const N = Number(process.argv[2] ?? 200_000);
const dk = newDataKey('bench');
const cpuUs = (f: () => void): number => {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / N;
};
const codes = Array.from({ length: N }, () => cryptoMinter.code());
let sink = 0;
for (let round = 0; round < 2; round++) {
  const mint = cpuUs(() => {
    for (let i = 0; i < N; i++) sink += cryptoMinter.code().length;
  });
  const sealed: string[] = new Array(N);
  const seal = cpuUs(() => {
    for (let i = 0; i < N; i++) sealed[i] = sealCode(dk, codes[i]!);
  });
  const open = cpuUs(() => {
    for (let i = 0; i < N; i++) sink += openCode(dk, sealed[i]!).length;
  });
  if (round === 1)
    console.log(
      `${N} codes: mint ${mint.toFixed(2)} µs, seal ${seal.toFixed(2)} µs, open ${open.toFixed(2)} µs of CPU each (sink ${sink % 10})`,
    );
}
