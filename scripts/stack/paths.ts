/**
 * Where the stack keeps its files: .stack/ (pid files, locks, each service's data and log) and
 * .cache/kafka/libs (the broker's jars, fetched once).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceName } from './results.js';

export interface Paths {
  root: string;
  stack: string;
  cache: string;
  kafkaCache: string;
  kafkaLibs: string;
  kafkaMarker: string;
  kafkaPom: string;
  kafkaLog4j: string;
  kafkaDir: string;
  kafkaData: string;
  kafkaLog: string;
  kafkaProps: string;
  kafkaClusterId: string;
  redisDir: string;
  redisLog: string;
  pgDir: string;
  pgData: string;
  pgLog: string;
  pidFile: (s: ServiceName) => string;
  lockFile: (s: ServiceName) => string;
}

// scripts/, the folder that holds this one: the root and the broker's recipe are found from it
const SCRIPT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function defaultRoot(): string {
  return path.resolve(SCRIPT_DIR, '..');
}

export function paths(root: string): Paths {
  const stack = path.join(root, '.stack');
  const cache = path.join(root, '.cache');
  const kafkaCache = path.join(cache, 'kafka');
  const kafkaDir = path.join(stack, 'kafka');
  const pgDir = path.join(stack, 'pg');
  return {
    root,
    stack,
    cache,
    kafkaCache,
    kafkaLibs: path.join(kafkaCache, 'libs'),
    kafkaMarker: path.join(kafkaCache, 'libs', '.complete'),
    // the broker's recipe always comes from this script's own folder, whatever `root` is
    kafkaPom: path.join(SCRIPT_DIR, 'kafka', 'pom.xml'),
    kafkaLog4j: path.join(SCRIPT_DIR, 'kafka', 'log4j.properties'),
    kafkaDir,
    kafkaData: path.join(kafkaDir, 'data'),
    kafkaLog: path.join(kafkaDir, 'kafka.log'),
    kafkaProps: path.join(kafkaDir, 'server.properties'),
    kafkaClusterId: path.join(kafkaDir, 'cluster-id'),
    redisDir: path.join(stack, 'redis'),
    redisLog: path.join(stack, 'redis', 'redis.log'),
    pgDir,
    pgData: path.join(pgDir, 'data'),
    pgLog: path.join(pgDir, 'postgres.log'),
    pidFile: (s) => path.join(stack, `${s === 'postgres' ? 'pg' : s}.pid`),
    lockFile: (s) => path.join(stack, `${s}.lock`),
  };
}
