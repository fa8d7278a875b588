// Applies Apache Kafka's own transforms and predicates (connect-transforms) to records described
// in a JSON file, for tests/tests/transforms.rs, which applies Tributary's to the same records and
// compares. Usage: java -cp <connect-libs>/*:<dir> TransformRunner cases.json > results.json
//
// A case: {"name", "config": {connector-style transforms.* / predicates.* keys}, "schemas": bool,
// "records": [{"topic", "partition", "offset", "timestamp", "key", "value", "headers": [[k, v]]}]}
// where key and value are the JSON text a JsonConverter reads (an envelope when "schemas"). Each
// result: {"topic", "partition", "timestamp", "key", "value", "headers"} (key and value as
// JsonConverter writes them), {"dropped": true} or {"error": message}.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;
import org.apache.kafka.connect.transforms.Transformation;
import org.apache.kafka.connect.transforms.predicates.Predicate;

public class TransformRunner {
    static final ObjectMapper JSON = new ObjectMapper();

    static Map<String, String> under(Map<String, String> config, String prefix) {
        Map<String, String> out = new HashMap<>();
        for (Map.Entry<String, String> e : config.entrySet()) {
            if (e.getKey().startsWith(prefix)) out.put(e.getKey().substring(prefix.length()), e.getValue());
        }
        return out;
    }

    static List<String> list(Map<String, String> config, String key) {
        List<String> out = new ArrayList<>();
        String v = config.get(key);
        if (v == null) return out;
        for (String s : v.split(",")) if (!s.trim().isEmpty()) out.add(s.trim());
        return out;
    }

    static Object create(String className) throws Exception {
        return Class.forName(className).getDeclaredConstructor().newInstance();
    }

    static String name(String given, String pkg) {
        return given.contains(".") ? given : pkg + given;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    public static void main(String[] args) throws Exception {
        JsonNode cases = JSON.readTree(new File(args[0]));
        ArrayNode results = JSON.createArrayNode();
        for (JsonNode c : cases) {
            Map<String, String> config = new HashMap<>();
            Iterator<Map.Entry<String, JsonNode>> it = c.get("config").fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                config.put(e.getKey(), e.getValue().asText());
            }
            boolean schemas = c.get("schemas").asBoolean();
            JsonConverter keys = new JsonConverter();
            keys.configure(Map.of("schemas.enable", String.valueOf(schemas)), true);
            JsonConverter values = new JsonConverter();
            values.configure(Map.of("schemas.enable", String.valueOf(schemas)), false);
            SimpleHeaderConverter headerConverter = new SimpleHeaderConverter();
            ArrayNode out = JSON.createArrayNode();
            try {
                Map<String, Predicate> predicates = new HashMap<>();
                for (String alias : list(config, "predicates")) {
                    Predicate p = (Predicate) create(name(config.get("predicates." + alias + ".type"),
                            "org.apache.kafka.connect.transforms.predicates."));
                    p.configure(under(config, "predicates." + alias + "."));
                    predicates.put(alias, p);
                }
                List<Transformation> chain = new ArrayList<>();
                List<Predicate> gates = new ArrayList<>();
                List<Boolean> negates = new ArrayList<>();
                for (String alias : list(config, "transforms")) {
                    String prefix = "transforms." + alias + ".";
                    Transformation t = (Transformation) create(name(config.get(prefix + "type"),
                            "org.apache.kafka.connect.transforms."));
                    Map<String, String> own = under(config, prefix);
                    own.remove("type");
                    String gate = own.remove("predicate");
                    String negate = own.remove("negate");
                    t.configure(own);
                    chain.add(t);
                    gates.add(gate == null ? null : predicates.get(gate));
                    negates.add(Boolean.parseBoolean(negate));
                }
                for (JsonNode r : c.get("records")) {
                    ObjectNode result = JSON.createObjectNode();
                    try {
                        String topic = r.get("topic").asText();
                        SchemaAndValue k = keys.toConnectData(topic, bytes(r.get("key")));
                        SchemaAndValue v = values.toConnectData(topic, bytes(r.get("value")));
                        ConnectHeaders headers = new ConnectHeaders();
                        if (r.has("headers")) {
                            for (JsonNode h : r.get("headers")) headers.addString(h.get(0).asText(), h.get(1).asText());
                        }
                        Long ts = r.get("timestamp").isNull() ? null : r.get("timestamp").asLong();
                        SinkRecord record = new SinkRecord(topic, r.get("partition").asInt(), k.schema(), k.value(),
                                v.schema(), v.value(), r.get("offset").asLong(), ts,
                                ts == null ? TimestampType.NO_TIMESTAMP_TYPE : TimestampType.CREATE_TIME, headers);
                        for (int i = 0; i < chain.size() && record != null; i++) {
                            Predicate gate = gates.get(i);
                            if (gate != null && gate.test(record) == negates.get(i)) continue;
                            record = (SinkRecord) chain.get(i).apply(record);
                        }
                        if (record == null) {
                            result.put("dropped", true);
                        } else {
                            result.put("topic", record.topic());
                            result.put("partition", record.kafkaPartition());
                            if (record.timestamp() == null) result.putNull("timestamp"); else result.put("timestamp", record.timestamp());
                            result.put("key", text(keys.fromConnectData(record.topic(), record.keySchema(), record.key())));
                            result.put("value", text(values.fromConnectData(record.topic(), record.valueSchema(), record.value())));
                            ArrayNode hs = result.putArray("headers");
                            for (Header h : record.headers()) {
                                ArrayNode pair = hs.addArray();
                                pair.add(h.key());
                                pair.add(text(headerConverter.fromConnectHeader(record.topic(), h.key(), h.schema(), h.value())));
                            }
                        }
                    } catch (Exception e) {
                        result.put("error", e.getMessage());
                    }
                    out.add(result);
                }
            } catch (Exception e) {
                ObjectNode result = JSON.createObjectNode();
                result.put("config_error", String.valueOf(e.getMessage()));
                out.add(result);
            }
            results.add(out);
        }
        System.out.println(JSON.writeValueAsString(results));
    }

    static byte[] bytes(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText().getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }
}
