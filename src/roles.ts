/** Roles whose code lives outside src/: the read side (projections/) and the batch worker (batch/). */
export {};
