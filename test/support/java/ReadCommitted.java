import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Kafka's own Java client reads a topic read_committed, from its start to the end it had when the
 * read began, and prints one line per record: partition, offset, value (tab-separated). A check of
 * what KafkaJS wrote, compression included, by the client every other tool is built on.
 *
 * java -cp '.cache/kafka/libs/*' test/support/java/ReadCommitted.java <brokers> <topic>
 */
public class ReadCommitted {
  public static void main(String[] args) {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      consumer.partitionsFor(args[1]).forEach(p -> partitions.add(new TopicPartition(p.topic(), p.partition())));
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // read_committed: the end offsets are the last stable offsets
      Map<TopicPartition, Long> ends = new HashMap<>(consumer.endOffsets(partitions));
      long deadline = System.currentTimeMillis() + 60_000;
      StringBuilder out = new StringBuilder();
      while (ends.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
        if (System.currentTimeMillis() > deadline) throw new IllegalStateException("read not finished in 60 s");
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          if (r.offset() < ends.get(new TopicPartition(r.topic(), r.partition()))) {
            out.append(r.partition()).append('\t').append(r.offset()).append('\t').append(r.value()).append('\n');
          }
        }
      }
      System.out.print(out);
    }
  }
}
