// esbuild injects this where the fairness library names Node's global `Buffer`
export { Buffer } from 'buffer';
