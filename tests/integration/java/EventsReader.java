// Reads every committed record of an events topic with the Apache Kafka Java client
// (isolation.level=read_committed) and prints, per record, the event_id header and the
// event_id in the JSON value: tab-separated, one line each. Used by
// tests/integration/test_event_contract_kafka.py; args: BOOTSTRAP TOPIC TIMEOUT_MS.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class EventsReader {
    private static final Pattern EVENT_ID = Pattern.compile("\"event_id\": \"([0-9a-f]{32})\"");

    public static void main(String[] args) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long deadline = System.currentTimeMillis() + Long.parseLong(args[2]);
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(args[1], Duration.ofSeconds(10))) {
                parts.add(new TopicPartition(p.topic(), p.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            // under read_committed the end offsets are the last stable offsets: read up to them
            Map<TopicPartition, Long> ends = consumer.endOffsets(parts);
            while (System.currentTimeMillis() < deadline && !reached(consumer, ends)) {
                for (ConsumerRecord<String, byte[]> rec : consumer.poll(Duration.ofMillis(200))) {
                    Header header = rec.headers().lastHeader("event_id");
                    Matcher m = EVENT_ID.matcher(new String(rec.value(), StandardCharsets.UTF_8));
                    System.out.println((header == null ? "-" : new String(header.value(), StandardCharsets.UTF_8))
                            + "\t" + (m.find() ? m.group(1) : "-") + "\t" + rec.key());
                }
            }
            if (!reached(consumer, ends)) {
                System.err.println("timed out before the end offsets " + ends);
                System.exit(3);
            }
        }
    }

    private static boolean reached(KafkaConsumer<String, byte[]> consumer, Map<TopicPartition, Long> ends) {
        for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
            if (consumer.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }
}
