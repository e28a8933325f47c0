import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;

// Readiness check and topic creation for deploy/stack in one JVM: TopicCommand takes one topic
// per call and each JVM start costs a second or more, so 14 topics that way cost 15-20 s.
//
// Usage: StackTopics BOOTSTRAP PARTITIONS REPLICATION TIMEOUT_SECONDS TOPIC...
// Waits until the broker lists topics, creates the missing ones, then waits until every
// partition of every wanted topic has a leader. Exit 0 on success, 1 on failure.
public final class StackTopics {
  public static void main(String[] args) throws InterruptedException {
    if (args.length < 5) {
      System.err.println("usage: StackTopics BOOTSTRAP PARTITIONS REPLICATION TIMEOUT_SECONDS TOPIC...");
      System.exit(2);
    }
    String bootstrap = args[0];
    int partitions = Integer.parseInt(args[1]);
    short replication = Short.parseShort(args[2]);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[3]));
    List<String> wanted = Arrays.asList(args).subList(4, args.length);

    Properties config = new Properties();
    config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(AdminClientConfig.CLIENT_ID_CONFIG, "inkwell-stack");
    config.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
    config.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
    try (Admin admin = Admin.create(config)) {
      Set<String> existing = null;
      String lastError = "";
      while (existing == null) {
        try {
          existing = admin.listTopics().names().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
          lastError = e.toString();
          if (System.nanoTime() > deadline) fail("broker did not list topics in time: " + lastError);
          Thread.sleep(250);
        }
      }

      List<NewTopic> missing = new ArrayList<>();
      for (String topic : wanted) {
        if (!existing.contains(topic)) missing.add(new NewTopic(topic, partitions, replication));
      }
      int created = 0;
      if (!missing.isEmpty()) {
        for (Map.Entry<String, KafkaFuture<Void>> entry :
            admin.createTopics(missing).values().entrySet()) {
          try {
            entry.getValue().get(30, TimeUnit.SECONDS);
            created++;
          } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
              fail("creating " + entry.getKey() + ": " + e.getCause());
            }
          } catch (Exception e) {
            fail("creating " + entry.getKey() + ": " + e);
          }
        }
      }

      // A created topic reaches the broker's metadata cache a moment after the controller
      // commits it; wait for leaders so a client that starts right after `up` finds them.
      while (true) {
        String problem = null;
        try {
          Map<String, TopicDescription> described =
              admin.describeTopics(wanted).allTopicNames().get(5, TimeUnit.SECONDS);
          for (TopicDescription d : described.values()) {
            for (TopicPartitionInfo p : d.partitions()) {
              if (p.leader() == null) problem = d.name() + "-" + p.partition() + " has no leader";
            }
            if (d.partitions().size() != partitions) {
              System.err.printf("kafka: warning: %s has %d partitions, expected %d%n",
                  d.name(), d.partitions().size(), partitions);
            }
          }
        } catch (Exception e) {
          problem = e.toString();
        }
        if (problem == null) break;
        if (System.nanoTime() > deadline) fail("topics not ready in time: " + problem);
        Thread.sleep(100);
      }
      System.out.printf("kafka: topics ready (%d created, %d already present)%n",
          created, wanted.size() - missing.size());
    }
  }

  private static void fail(String message) {
    System.err.println("kafka: " + message);
    System.exit(1);
  }
}
