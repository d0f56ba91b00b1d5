/** The files a new KRaft broker is started from: server.properties and its cluster id. */
import { randomBytes } from 'node:crypto';

/** Kafka's Uuid.randomUuid().toString(): 16 random bytes, base64url without padding, not starting with '-'. */
export function kafkaUuid(): string {
  for (;;) {
    const s = randomBytes(16).toString('base64url');
    if (!s.startsWith('-') && s !== 'AAAAAAAAAAAAAAAAAAAAAA' && s !== 'AAAAAAAAAAAAAAAAAAAAAQ') return s;
  }
}

export interface KafkaPropsInput {
  host: string;
  port: number;
  controllerPort: number;
  dataDir: string;
}

/** server.properties for the single-node KRaft broker+controller. */
export function kafkaServerProperties({ host, port, controllerPort, dataDir }: KafkaPropsInput): string {
  const props: Array<[string, string | number] | string> = [
    '# written by scripts/stack.ts on every start; edit the script, not this file',
    '## KRaft, one node that is both broker and controller',
    ['process.roles', 'broker,controller'],
    ['node.id', 1],
    ['controller.quorum.voters', `1@${host}:${controllerPort}`],
    ['listeners', `PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://${host}:${port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', dataDir],
    '## one node: every internal topic has one replica',
    ['offsets.topic.replication.factor', 1],
    ['transaction.state.log.replication.factor', 1],
    ['transaction.state.log.min.isr', 1],
    ['default.replication.factor', 1],
    ['min.insync.replicas', 1],
    ['offsets.topic.num.partitions', 10],
    ['transaction.state.log.num.partitions', 10],
    '## behaviour the app relies on',
    ['group.initial.rebalance.delay.ms', 0],
    ['auto.create.topics.enable', 'false'],
    ['num.partitions', 1],
    ['delete.topic.enable', 'true'],
    '# the log is the store of record: never delete by age or size unless a topic says so',
    ['log.retention.ms', -1],
    ['log.retention.bytes', -1],
    '## sized for a small (2-core) machine',
    ['num.network.threads', 2],
    ['num.io.threads', 4],
    ['background.threads', 4],
    ['num.recovery.threads.per.data.dir', 1],
    ['log.cleaner.threads', 1],
    ['log.cleaner.dedupe.buffer.size', 33554432],
    ['socket.send.buffer.bytes', 102400],
    ['socket.receive.buffer.bytes', 102400],
    ['socket.request.max.bytes', 104857600],
    ['log.segment.bytes', 1073741824],
    ['log.retention.check.interval.ms', 300000],
  ];
  return (
    props.map((p) => (typeof p === 'string' ? `\n${p}` : `${p[0]}=${String(p[1])}`)).join('\n').trimStart() + '\n'
  );
}
