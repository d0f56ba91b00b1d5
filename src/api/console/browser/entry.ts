/**
 * What the console's page imports as /console/fairness.js: the fairness library's own verifier,
 * bundled for the browser with ./crypto.ts in place of node:crypto.
 */
export { entryOfFile, verifyReceipt } from '../../../domain/fairness/verify.js';
