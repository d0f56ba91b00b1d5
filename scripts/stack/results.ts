/** What stack:up and stack:down report (one result per service) and the errors they fail with. */

export type ServiceName = 'kafka' | 'redis' | 'postgres';
export type ServiceStatus = 'started' | 'reused' | 'failed';

export interface ServiceResult {
  name: ServiceName;
  status: ServiceStatus;
  /** host:port the service answers on */
  address: string;
  /** wall-clock seconds this service took (probe + start + wait) */
  seconds: number;
  /** pid of the process `up` started (status "started" only) */
  pid?: number;
  /** extra information, e.g. "created database firstcome" or the failure reason */
  detail?: string;
}

export interface DownResult {
  name: ServiceName;
  status: 'stopped' | 'untouched' | 'gone' | 'failed';
  pid?: number;
  seconds: number;
  detail?: string;
}

export class StackError extends Error {
  constructor(
    message: string,
    readonly results: Array<ServiceResult | DownResult> = [],
  ) {
    super(message);
    this.name = 'StackError';
  }
}

/** A failure with a message meant for the person running the command. */
export class ServiceError extends Error {}

/** One line per service, the same for up and down: name, status, where, seconds, detail. */
export function formatResult(r: ServiceResult | DownResult): string {
  const where = 'address' in r ? r.address : r.pid !== undefined ? `pid ${r.pid}` : '-';
  const line = `${r.name.padEnd(10)}${r.status.padEnd(10)}${where.padEnd(17)}${r.seconds.toFixed(1)}s`;
  return r.detail ? `${line}   ${r.detail}` : line;
}
