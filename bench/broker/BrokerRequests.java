/** Prints a broker's request counts (by request type and version) and record and byte counters
 as one JSON object, read over JMX from 127.0.0.1:<port>. Run as a single source file:
 `java bench/broker/BrokerRequests.java <jmx-port>`. */
import javax.management.*;
import javax.management.remote.*;
import java.util.*;

public class BrokerRequests {
    public static void main(String[] a) throws Exception {
        JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(
            "service:jmx:rmi:///jndi/rmi://127.0.0.1:" + a[0] + "/jmxrmi"));
        MBeanServerConnection s = c.getMBeanServerConnection();
        String[] patterns = {
            "kafka.network:type=RequestMetrics,name=RequestsPerSec,*",
            "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec",
            "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=*",
            "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec",
            "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec",
            "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec",
            "kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec",
        };
        TreeMap<String, Long> out = new TreeMap<>();
        for (String p : patterns) {
            for (ObjectName n : s.queryNames(new ObjectName(p), null)) {
                Object count = s.getAttribute(n, "Count");
                String key = n.getKeyProperty("request");
                if (key == null) key = n.getKeyProperty("name");
                String topic = n.getKeyProperty("topic");
                if (topic != null) key += ":" + topic.replaceAll("bench-[a-z]+-[0-9a-f]{8}-?", "");
                String v = n.getKeyProperty("version");
                if (v != null) key += "/v" + v;
                out.merge(key, ((Number) count).longValue(), Long::sum);
            }
        }
        // Time in the request handler threads, by request type (Mean * Count of the histogram).
        for (ObjectName n : s.queryNames(new ObjectName(
                "kafka.network:type=RequestMetrics,name=LocalTimeMs,*"), null)) {
            long count = ((Number) s.getAttribute(n, "Count")).longValue();
            double mean = ((Number) s.getAttribute(n, "Mean")).doubleValue();
            if (count > 0) {
                out.put("LocalTimeMicros:" + n.getKeyProperty("request"), Math.round(mean * count * 1000));
            }
        }
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, Long> e : out.entrySet()) {
            if (sb.length() > 1) sb.append(",");
            sb.append("\"").append(e.getKey()).append("\":").append(e.getValue());
        }
        System.out.println(sb.append("}"));
        c.close();
    }
}
