import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.LogDirDescription;

/**
 * The bytes a topic takes in the brokers' log dirs (every partition and replica), as the brokers
 * report them (DescribeLogDirs): what a codec saves on disk, record batch headers included.
 *
 * java -cp '.cache/kafka/libs/*' bench/java/TopicSize.java <brokers> <topic>
 */
public class TopicSize {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    try (Admin admin = Admin.create(props)) {
      var brokers = admin.describeCluster().nodes().get().stream().map(n -> n.id()).toList();
      long bytes = 0;
      for (Map<String, LogDirDescription> dirs : admin.describeLogDirs(brokers).allDescriptions().get().values()) {
        for (LogDirDescription dir : dirs.values()) {
          for (var replica : dir.replicaInfos().entrySet()) {
            if (replica.getKey().topic().equals(args[1])) bytes += replica.getValue().size();
          }
        }
      }
      System.out.println(bytes);
    }
  }
}
