//! Each transform on schema'd and schemaless records, predicates with `negate`, and the
//! configuration errors a user sees. The differential test against Java's own transforms is
//! `tests/tests/transforms.rs`.

use std::collections::BTreeMap;

use tributary_connect_api::{Headers, Schema, SchemaBuilder, Struct, Type, Value, logical};

use super::{Chain, Record};

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn chain(pairs: &[(&str, &str)]) -> Chain {
    Chain::from_config(&config(pairs)).unwrap_or_else(|e| panic!("{e}"))
}

fn user_schema() -> Schema {
    SchemaBuilder::struct_()
        .name("user")
        .field("id", Schema::int64())
        .field("email", Schema::optional_string())
        .build()
        .unwrap()
}

fn user(id: i64, email: Option<&str>) -> Value {
    let mut s = Struct::new(user_schema()).unwrap();
    s.put("id", Some(Value::Int64(id))).unwrap();
    s.put("email", email.map(|e| Value::String(e.into())))
        .unwrap();
    Value::Struct(s)
}

fn record(value_schema: Option<Schema>, value: Option<Value>) -> Record {
    Record {
        topic: "users".into(),
        kafka_partition: Some(3),
        kafka_offset: Some(42),
        key_schema: None,
        key: None,
        value_schema,
        value,
        timestamp: Some(1_700_000_000_000),
        headers: Headers::new(),
    }
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Some(Value::String(k.to_string())), Some(v.clone())))
            .collect(),
    )
}

fn field<'a>(v: &'a Option<Value>, name: &str) -> Option<&'a Value> {
    match v {
        Some(Value::Struct(s)) => s.get(name).unwrap(),
        Some(Value::Map(m)) => super::util::map_get(m, name),
        _ => None,
    }
}

#[test]
fn insert_field_adds_record_metadata_with_javas_schemas() {
    let c = chain(&[
        ("transforms", "ins"),
        (
            "transforms.ins.type",
            "org.apache.kafka.connect.transforms.InsertField$Value",
        ),
        ("transforms.ins.topic.field", "t!"),
        ("transforms.ins.partition.field", "p"),
        ("transforms.ins.offset.field", "o?"),
        ("transforms.ins.timestamp.field", "ts"),
        ("transforms.ins.static.field", "src"),
        ("transforms.ins.static.value", "pg"),
    ]);
    let out = c
        .apply(record(Some(user_schema()), Some(user(1, None))))
        .unwrap()
        .unwrap();
    let schema = out.value_schema.clone().unwrap();
    assert_eq!(schema.name(), Some("user"));
    assert!(!schema.field("t").unwrap().schema.is_optional());
    assert!(schema.field("p").unwrap().schema.is_optional());
    assert_eq!(
        schema.field("ts").unwrap().schema.name(),
        Some(logical::TIMESTAMP)
    );
    assert_eq!(field(&out.value, "t"), Some(&Value::String("users".into())));
    assert_eq!(field(&out.value, "p"), Some(&Value::Int32(3)));
    assert_eq!(field(&out.value, "o"), Some(&Value::Int64(42)));
    assert_eq!(
        field(&out.value, "ts"),
        Some(&Value::Timestamp(1_700_000_000_000))
    );
    assert_eq!(field(&out.value, "src"), Some(&Value::String("pg".into())));
    assert_eq!(field(&out.value, "id"), Some(&Value::Int64(1)));

    let out = c
        .apply(record(None, Some(map(&[("id", Value::Int64(1))]))))
        .unwrap()
        .unwrap();
    assert_eq!(
        field(&out.value, "ts"),
        Some(&Value::Int64(1_700_000_000_000))
    );
    // A tombstone passes untouched.
    let out = c.apply(record(None, None)).unwrap().unwrap();
    assert_eq!(out.value, None);
    // offset.field on a source record (no offset) is Java's requireSinkRecord error.
    let mut source = record(None, Some(map(&[])));
    source.kafka_offset = None;
    let e = c.apply(source).unwrap_err();
    assert!(
        e.error
            .0
            .contains("Only SinkRecord supported for [field insertion]"),
        "{e}"
    );
}

#[test]
fn replace_field_filters_and_renames() {
    let c = chain(&[
        ("transforms", "r"),
        ("transforms.r.type", "ReplaceField$Value"),
        ("transforms.r.exclude", "email"),
        ("transforms.r.renames", "id:user_id"),
    ]);
    let out = c
        .apply(record(Some(user_schema()), Some(user(7, Some("a@b")))))
        .unwrap()
        .unwrap();
    let s = out.value_schema.clone().unwrap();
    assert_eq!(
        s.fields()
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["user_id"]
    );
    assert_eq!(field(&out.value, "user_id"), Some(&Value::Int64(7)));
    let out = c
        .apply(record(
            None,
            Some(map(&[
                ("id", Value::Int64(7)),
                ("email", Value::String("x".into())),
            ])),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(out.value, Some(map(&[("user_id", Value::Int64(7))])));
    let e = Chain::from_config(&config(&[
        ("transforms", "r"),
        ("transforms.r.type", "ReplaceField$Value"),
        ("transforms.r.renames", "nocolon"),
    ]))
    .unwrap_err();
    assert!(
        e.to_string().contains("Invalid rename mapping: nocolon"),
        "{e}"
    );
}

#[test]
fn mask_field_zeroes_or_replaces() {
    let c = chain(&[
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
        ("transforms.m.fields", "id,email"),
    ]);
    let out = c
        .apply(record(Some(user_schema()), Some(user(7, Some("a@b")))))
        .unwrap()
        .unwrap();
    assert_eq!(field(&out.value, "id"), Some(&Value::Int64(0)));
    assert_eq!(
        field(&out.value, "email"),
        Some(&Value::String(String::new()))
    );
    let c = chain(&[
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
        ("transforms.m.fields", "id"),
        ("transforms.m.replacement", "not-a-number"),
    ]);
    let e = c
        .apply(record(Some(user_schema()), Some(user(7, None))))
        .unwrap_err();
    assert_eq!(
        e.error.0,
        "Unable to convert not-a-number (class java.lang.String) to a number"
    );
    let e = Chain::from_config(&config(&[
        ("transforms", "m"),
        ("transforms.m.type", "MaskField$Value"),
    ]))
    .unwrap_err();
    assert_eq!(
        e.0,
        vec![(
            "transforms.m.fields".to_string(),
            "Missing required configuration \"transforms.m.fields\" which has no default value."
                .to_string()
        )]
    );
}

#[test]
fn value_to_key_extract_and_hoist() {
    let c = chain(&[
        ("transforms", "k,x"),
        (
            "transforms.k.type",
            "org.apache.kafka.connect.transforms.ValueToKey",
        ),
        ("transforms.k.fields", "id"),
        ("transforms.x.type", "ExtractField$Key"),
        ("transforms.x.field", "id"),
    ]);
    let out = c
        .apply(record(Some(user_schema()), Some(user(9, None))))
        .unwrap()
        .unwrap();
    assert_eq!(out.key, Some(Value::Int64(9)));
    assert_eq!(
        out.key_schema.as_ref().map(Schema::type_),
        Some(tributary_connect_api::Type::Int64)
    );
    let e = chain(&[
        ("transforms", "k"),
        ("transforms.k.type", "ValueToKey"),
        ("transforms.k.fields", "nope"),
    ])
    .apply(record(Some(user_schema()), Some(user(9, None))))
    .unwrap_err();
    assert_eq!(e.error.0, "Field does not exist: nope");

    let c = chain(&[
        ("transforms", "h"),
        ("transforms.h.type", "HoistField$Value"),
        ("transforms.h.field", "line"),
    ]);
    let out = c
        .apply(record(
            Some(Schema::string()),
            Some(Value::String("x".into())),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(field(&out.value, "line"), Some(&Value::String("x".into())));
    let out = c
        .apply(record(None, Some(Value::String("x".into()))))
        .unwrap()
        .unwrap();
    assert_eq!(out.value, Some(map(&[("line", Value::String("x".into()))])));
    // A schemaless value that is not a map is Java's requireMap error.
    let e = chain(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a"),
    ])
    .apply(record(None, Some(Value::String("x".into()))))
    .unwrap_err();
    assert_eq!(
        e.error.0,
        "Only Map objects supported in absence of schema for [field extraction], found: java.lang.String"
    );
}

#[test]
fn routers_rename_topics() {
    let c = chain(&[
        ("transforms", "r"),
        ("transforms.r.type", "RegexRouter"),
        ("transforms.r.regex", "(.*)s"),
        ("transforms.r.replacement", "$1-v2"),
    ]);
    assert_eq!(
        c.apply(record(None, None)).unwrap().unwrap().topic,
        "user-v2"
    );
    let c = chain(&[
        ("transforms", "t"),
        ("transforms.t.type", "TimestampRouter"),
    ]);
    assert_eq!(
        c.apply(record(None, None)).unwrap().unwrap().topic,
        "users-20231114"
    );
    let mut no_ts = record(None, None);
    no_ts.timestamp = None;
    assert!(
        c.apply(no_ts)
            .unwrap_err()
            .error
            .0
            .starts_with("Timestamp missing on record")
    );
}

#[test]
fn headers_are_inserted_dropped_and_taken_from_fields() {
    let c = chain(&[
        ("transforms", "i,f,d"),
        ("transforms.i.type", "InsertHeader"),
        ("transforms.i.header", "n"),
        ("transforms.i.value.literal", "42"),
        ("transforms.f.type", "HeaderFrom$Value"),
        ("transforms.f.fields", "email"),
        ("transforms.f.headers", "who"),
        ("transforms.f.operation", "move"),
        ("transforms.d.type", "DropHeaders"),
        ("transforms.d.headers", "gone"),
    ]);
    let mut r = record(Some(user_schema()), Some(user(1, Some("a@b"))));
    r.headers.add_string("gone", "x");
    let out = c.apply(r).unwrap().unwrap();
    let keys: Vec<&str> = out.headers.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(keys, ["n", "who"]);
    assert_eq!(
        out.headers.last_with_name("n").unwrap().value,
        Some(Value::Int8(42))
    );
    assert_eq!(
        out.headers.last_with_name("who").unwrap().value,
        Some(Value::String("a@b".into()))
    );
    assert!(out.value_schema.unwrap().field("email").is_none());
}

#[test]
fn predicates_gate_steps_and_negate_inverts() {
    let c = chain(&[
        ("transforms", "drop"),
        ("transforms.drop.type", "Filter"),
        ("transforms.drop.predicate", "tomb"),
        ("predicates", "tomb"),
        (
            "predicates.tomb.type",
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        ),
    ]);
    assert!(c.apply(record(None, None)).unwrap().is_none());
    assert!(
        c.apply(record(None, Some(Value::Int8(1))))
            .unwrap()
            .is_some()
    );
    let c = chain(&[
        ("transforms", "drop"),
        ("transforms.drop.type", "Filter"),
        ("transforms.drop.predicate", "users"),
        ("transforms.drop.negate", "true"),
        ("predicates", "users"),
        ("predicates.users.type", "TopicNameMatches"),
        ("predicates.users.pattern", "user.*"),
    ]);
    assert!(
        c.apply(record(None, None)).unwrap().is_some(),
        "users matches: kept"
    );
    let mut other = record(None, None);
    other.topic = "orders".into();
    assert!(
        c.apply(other).unwrap().is_none(),
        "orders does not match: dropped"
    );
    let c = chain(&[
        ("transforms", "drop"),
        ("transforms.drop.type", "Filter"),
        ("transforms.drop.predicate", "h"),
        ("predicates", "h"),
        ("predicates.h.type", "HasHeaderKey"),
        ("predicates.h.name", "skip"),
    ]);
    let mut flagged = record(None, None);
    flagged.headers.add_string("skip", "1");
    assert!(c.apply(flagged).unwrap().is_none());
}

#[test]
fn configuration_errors_name_the_key_to_fix() {
    let e = Chain::from_config(&config(&[
        ("transforms", "a,b,c"),
        ("transforms.a.type", "NoSuchTransform"),
        ("transforms.c.type", "Filter"),
        ("transforms.c.predicate", "missing"),
    ]))
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "transforms.a.type",
            "transforms.b.type",
            "transforms.c.predicate"
        ]
    );
    assert!(
        e.0[0]
            .1
            .contains("Class NoSuchTransform could not be found."),
        "{e}"
    );
    assert!(
        e.0[1]
            .1
            .contains("Missing required configuration \"transforms.b.type\""),
        "{e}"
    );
    assert!(e.0[2].1.contains("not in predicates"), "{e}");
    let e = Chain::from_config(&config(&[
        ("transforms", "r"),
        ("transforms.r.type", "RegexRouter"),
        ("transforms.r.regex", "(unclosed"),
        ("transforms.r.replacement", "x"),
    ]))
    .unwrap_err();
    assert!(
        e.0[0]
            .1
            .contains("Invalid value (unclosed for configuration regex"),
        "{e}"
    );
}

#[test]
fn set_schema_metadata_renames_the_schema_and_its_struct() {
    let c = chain(&[
        ("transforms", "s"),
        ("transforms.s.type", "SetSchemaMetadata$Value"),
        ("transforms.s.schema.name", "com.example.User"),
        ("transforms.s.schema.version", "3"),
    ]);
    let out = c
        .apply(record(Some(user_schema()), Some(user(1, None))))
        .unwrap()
        .unwrap();
    let s = out.value_schema.unwrap();
    assert_eq!((s.name(), s.version()), (Some("com.example.User"), Some(3)));
    match out.value {
        Some(Value::Struct(v)) => assert_eq!(v.schema().name(), Some("com.example.User")),
        other => panic!("{other:?}"),
    }
    let e = c.apply(record(None, Some(map(&[])))).unwrap_err();
    assert_eq!(e.error.0, "Schema required for [updating schema metadata]");
}

#[test]
fn extract_field_v2_reads_nested_paths_and_v1_reads_names_with_dots() {
    let inner = SchemaBuilder::struct_()
        .field("c.d", Schema::int32())
        .build()
        .unwrap();
    let outer = SchemaBuilder::struct_()
        .field("a", inner.clone())
        .field("a.b", Schema::string())
        .build()
        .unwrap();
    let mut i = Struct::new(inner).unwrap();
    i.put("c.d", Some(Value::Int32(7))).unwrap();
    let mut o = Struct::new(outer.clone()).unwrap();
    o.put("a", Some(Value::Struct(i))).unwrap();
    o.put("a.b", Some(Value::String("flat".into()))).unwrap();
    let rec = || record(Some(outer.clone()), Some(Value::Struct(o.clone())));
    let v2 = chain(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a.`c.d`"),
        ("transforms.x.field.syntax.version", "v2"),
    ]);
    let out = v2.apply(rec()).unwrap().unwrap();
    assert_eq!(out.value, Some(Value::Int32(7)));
    assert_eq!(out.value_schema.map(|s| s.type_()), Some(Type::Int32));
    let v1 = chain(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a.b"),
    ]);
    let out = v1.apply(rec()).unwrap().unwrap();
    assert_eq!(out.value, Some(Value::String("flat".into())));
    // A missing step is an unknown field; a step into a non-struct is refused as in Java.
    let through = chain(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a.b.c"),
        ("transforms.x.field.syntax.version", "V2"),
    ]);
    assert_eq!(
        through.apply(rec()).unwrap_err().error.0,
        "Unknown field: a.b.c"
    );
    let through = chain(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a.`c.d`.e"),
        ("transforms.x.field.syntax.version", "V2"),
    ]);
    assert_eq!(
        through.apply(rec()).unwrap_err().error.0,
        "Cannot look up fields on non-struct type"
    );
    let e = Chain::from_config(&config(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a.`b"),
        ("transforms.x.field.syntax.version", "V2"),
    ]))
    .unwrap_err();
    assert!(
        e.0[0]
            .1
            .contains("Incomplete backtick pair in path: [a.`b]"),
        "{e}"
    );
    let e = Chain::from_config(&config(&[
        ("transforms", "x"),
        ("transforms.x.type", "ExtractField$Value"),
        ("transforms.x.field", "a"),
        ("transforms.x.field.syntax.version", "V3"),
    ]))
    .unwrap_err();
    assert_eq!(e.0[0].0, "transforms.x.field.syntax.version");
    assert!(
        e.0[0]
            .1
            .contains("String must be one of (case insensitive): V1, V2"),
        "{e}"
    );
}
