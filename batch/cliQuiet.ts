// Imported first by the operator CLIs: their output is the progress bar and the summary, so the
// services' info logs are off unless LOG_LEVEL asks for them. (Must run before src/logger.ts loads.)
process.env.LOG_LEVEL ??= 'warn';
