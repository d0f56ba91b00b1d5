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
  /** a node of a cluster: its id, every controller (`id@host:port`), and the replication it affords */
  cluster?: { nodeId: number; voters: string; replicas: number; minInsync: number };
}

/** server.properties for a KRaft node that is both broker and controller: alone, or one of a cluster. */
export function kafkaServerProperties({ host, port, controllerPort, dataDir, cluster }: KafkaPropsInput): string {
  const replicas = cluster?.replicas ?? 1;
  const minInsync = cluster?.minInsync ?? 1;
  const props: Array<[string, string | number] | string> = [
    '# written by scripts/stack.ts on every start; edit the script, not this file',
    cluster
      ? `## KRaft, node ${cluster.nodeId} of a cluster, broker and controller`
      : '## KRaft, one node that is both broker and controller',
    ['process.roles', 'broker,controller'],
    ['node.id', cluster?.nodeId ?? 1],
    ['controller.quorum.voters', cluster?.voters ?? `1@${host}:${controllerPort}`],
    ['listeners', `PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://${host}:${port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', dataDir],
    cluster
      ? `## ${replicas} replicas of every internal topic, ${minInsync} in sync: any one node may die`
      : '## one node: every internal topic has one replica',
    ['offsets.topic.replication.factor', replicas],
    ['transaction.state.log.replication.factor', replicas],
    ['transaction.state.log.min.isr', minInsync],
    ['default.replication.factor', replicas],
    ['min.insync.replicas', minInsync],
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
    props
      .map((p) => (typeof p === 'string' ? `\n${p}` : `${p[0]}=${String(p[1])}`))
      .join('\n')
      .trimStart() + '\n'
  );
}
