//! Tributary's JsonConverter writes the very bytes Apache Kafka's does: every case of
//! tests/fixtures/json-converter (generated from the real connect-json jar), under every
//! combination of schemas.enable, decimal.format and replace.null.with.default.

#![allow(clippy::expect_used)] // fixture set-up: a broken fixture should stop the test right there

use std::collections::BTreeMap;

use num_bigint::BigInt;
use tributary_connect_api::{Decimal, Schema, SchemaBuilder, Struct, Type, Value, logical};
use tributary_worker::converter::json::{DecimalFormat, JsonConverter};

fn build(b: SchemaBuilder) -> Schema {
    b.build().expect("valid schema")
}

fn dec(unscaled: i64, scale: i32) -> Value {
    Value::Decimal(Decimal {
        unscaled: BigInt::from(unscaled),
        scale,
    })
}

/// The cases of JsonConverterFixtures.java, built the same way.
fn cases() -> BTreeMap<&'static str, (Schema, Option<Value>)> {
    let s = |v: &str| Some(Value::String(v.to_string()));
    let address = build(
        SchemaBuilder::struct_()
            .name("com.example.Address")
            .version(2)
            .doc("where")
            .field("street", Schema::string())
            .field(
                "zip",
                build(
                    SchemaBuilder::new(Type::String)
                        .optional()
                        .default_value(Value::String("00000".into())),
                ),
            ),
    );
    let person = build(
        SchemaBuilder::struct_()
            .name("com.example.Person")
            .parameter("source", "fixtures")
            .parameter("another", "param")
            .field("name", Schema::string())
            .field("age", build(SchemaBuilder::new(Type::Int32).optional()))
            .field("address", address.clone())
            .field(
                "tags",
                build(SchemaBuilder::array(Schema::string()).optional()),
            )
            .field("balance", build(logical::decimal_schema(2).optional())),
    );
    let mut home = Struct::new(address).expect("struct");
    home.put("street", s("Main St 1")).expect("fits");
    let mut ada = Struct::new(person.clone()).expect("struct");
    ada.put("name", s("Ada")).expect("fits");
    ada.put("address", Some(Value::Struct(home))).expect("fits");
    ada.put("tags", Some(Value::Array(vec![s("x"), s("y")])))
        .expect("fits");
    ada.put("balance", Some(dec(1050, 2))).expect("fits");

    BTreeMap::from([
        ("int8", (Schema::int8(), Some(Value::Int8(-8)))),
        ("int16", (Schema::int16(), Some(Value::Int16(300)))),
        ("int32", (Schema::int32(), Some(Value::Int32(123456)))),
        (
            "int64",
            (Schema::int64(), Some(Value::Int64(9007199254740993))),
        ),
        ("float32", (Schema::float32(), Some(Value::Float32(1.5)))),
        (
            "float64_large",
            (Schema::float64(), Some(Value::Float64(1.0e10))),
        ),
        (
            "float64_small",
            (Schema::float64(), Some(Value::Float64(1.0e-7))),
        ),
        (
            "float64_whole",
            (Schema::float64(), Some(Value::Float64(3.0))),
        ),
        ("boolean", (Schema::boolean(), Some(Value::Boolean(true)))),
        (
            "string_unicode",
            (Schema::string(), s("caf\u{e9} \"quoted\" \u{2603}")),
        ),
        (
            "bytes",
            (Schema::bytes(), Some(Value::Bytes(vec![0, 1, 2, 0xff]))),
        ),
        ("null_optional", (Schema::optional_string(), None)),
        (
            "null_with_default",
            (
                build(
                    SchemaBuilder::new(Type::Int32)
                        .optional()
                        .default_value(Value::Int32(42)),
                ),
                None,
            ),
        ),
        (
            "array",
            (
                build(SchemaBuilder::array(Schema::int32())),
                Some(Value::Array(vec![
                    Some(Value::Int32(1)),
                    Some(Value::Int32(2)),
                    Some(Value::Int32(3)),
                ])),
            ),
        ),
        (
            "map_string_keys",
            (
                build(SchemaBuilder::map(Schema::string(), Schema::int32())),
                Some(Value::Map(vec![
                    (s("a"), Some(Value::Int32(1))),
                    (s("b"), Some(Value::Int32(2))),
                ])),
            ),
        ),
        (
            "map_int_keys",
            (
                build(SchemaBuilder::map(Schema::int32(), Schema::string())),
                Some(Value::Map(vec![
                    (Some(Value::Int32(1)), s("one")),
                    (Some(Value::Int32(2)), s("two")),
                ])),
            ),
        ),
        (
            "decimal",
            (build(logical::decimal_schema(2)), Some(dec(1234567, 2))),
        ),
        (
            "decimal_negative",
            (build(logical::decimal_schema(2)), Some(dec(-1, 2))),
        ),
        (
            "date",
            (build(logical::date_schema()), Some(Value::Date(19000))),
        ),
        (
            "time",
            (build(logical::time_schema()), Some(Value::Time(3_723_004))),
        ),
        (
            "timestamp",
            (
                build(logical::timestamp_schema()),
                Some(Value::Timestamp(1_700_000_000_123)),
            ),
        ),
        ("struct_nested", (person, Some(Value::Struct(ada)))),
    ])
}

/// One line of the fixture file: the case, the converter settings, and Java's output.
struct Fixture {
    name: String,
    converter: JsonConverter,
    json: Option<String>,
}

fn fixtures() -> Vec<Fixture> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/json-converter/json_converter.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("fixtures");
    text.lines()
        .map(|line| {
            let fx: serde_json::Value = serde_json::from_str(line).expect("fixture line");
            Fixture {
                name: fx["case"].as_str().expect("case").to_string(),
                converter: JsonConverter::new(
                    fx["schemas_enable"].as_bool().expect("bool"),
                    if fx["decimal_format"] == "NUMERIC" {
                        DecimalFormat::Numeric
                    } else {
                        DecimalFormat::Base64
                    },
                    fx["replace_null_with_default"].as_bool().expect("bool"),
                ),
                json: fx["json"].as_str().map(str::to_string),
            }
        })
        .collect()
}

#[test]
fn every_fixture_is_written_byte_for_byte() {
    let cases = cases();
    let fixtures = fixtures();
    let mut failures = Vec::new();
    for Fixture {
        name,
        converter,
        json,
    } in &fixtures
    {
        let (schema, value) = cases
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no Rust case for fixture {name}"));
        let got = converter
            .from_connect_data(Some(schema), value.as_ref())
            .expect("converts")
            .map(|b| String::from_utf8(b).expect("utf-8"));
        if &got != json {
            failures.push(format!(
                "{name} {converter:?}\n  want {json:?}\n  got  {got:?}"
            ));
        }
    }
    assert!(fixtures.len() >= 176, "only {} fixtures", fixtures.len());
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_required_null_without_default_is_an_error_naming_the_problem() {
    let err = JsonConverter::default()
        .from_connect_data(Some(&Schema::string()), None)
        .expect_err("required null");
    assert!(
        err.to_string().contains("required and has no default"),
        "{err}"
    );
    assert_eq!(
        JsonConverter::default()
            .from_connect_data(None, None)
            .expect("null record"),
        None
    );
}

/// Reading every fixture back and writing it again gives the same bytes; with schemas on, the
/// schema read is the very schema the case was built with, and so is the value (except where a
/// null was replaced by its default on the way out).
#[test]
fn every_fixture_reads_back_to_the_same_data() {
    let cases = cases();
    let mut failures = Vec::new();
    for Fixture {
        name,
        converter,
        json,
    } in fixtures()
    {
        let name = name.as_str();
        let Some(json) = json.as_deref() else {
            continue;
        };
        let (schema, value) = match converter.to_connect_data(Some(json.as_bytes())) {
            Ok(read) => read,
            Err(e) => {
                failures.push(format!("{name} {converter:?}: {e}"));
                continue;
            }
        };
        // Without a schema, a null payload reads as a null record, and a numeric decimal as a
        // double (10.50 becomes 10.5): lossy in Java too, so those bytes cannot come back.
        let lossy = !converter.schemas_enable() && (json == "null" || json.contains("10.50"));
        let again = converter
            .from_connect_data(schema.as_ref(), value.as_ref())
            .map(|b| b.map(|b| String::from_utf8(b).expect("utf-8")));
        if !lossy && again.as_ref().ok().and_then(|b| b.as_deref()) != Some(json) {
            failures.push(format!(
                "{name} {converter:?}\n  read {json}\n  wrote {again:?}"
            ));
        }
        if converter.schemas_enable() {
            let (want_schema, want_value) = &cases[name];
            if schema.as_ref() != Some(want_schema) {
                failures.push(format!(
                    "{name}: schema read back differs:\n  {schema:?}\n  {want_schema:?}"
                ));
            }
            // A null with a default comes back as the default when replace.null.with.default is on.
            let replaced = matches!(name, "null_with_default" | "struct_nested")
                && converter.replace_null_with_default();
            if !replaced && &value != want_value {
                failures.push(format!(
                    "{name} {converter:?}: value read back differs:\n  {value:?}\n  {want_value:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_input_gets_errors_that_say_what_is_wrong() {
    let on = JsonConverter::default();
    let err = on
        .to_connect_data(Some(b"{\"a\":1}"))
        .expect_err("no envelope")
        .to_string();
    assert!(err.contains("schemas.enable=false"), "{err}");
    let err = on
        .to_connect_data(Some(b"{\"schema\":"))
        .expect_err("truncated")
        .to_string();
    assert!(err.contains("serialization error"), "{err}");
    let err = on
        .to_connect_data(Some(
            br#"{"schema":{"type":"int8","optional":false},"payload":300}"#,
        ))
        .expect_err("out of range")
        .to_string();
    assert!(err.contains("300 is out of range for INT8"), "{err}");
    let err = on
        .to_connect_data(Some(
            br#"{"schema":{"type":"string","optional":false},"payload":null}"#,
        ))
        .expect_err("required null")
        .to_string();
    assert!(
        err.contains("Invalid null value for required STRING field"),
        "{err}"
    );
    let decimal = br#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":1.005}"#;
    let err = on
        .to_connect_data(Some(decimal))
        .expect_err("would round")
        .to_string();
    assert!(err.contains("1.005 is not a decimal of scale 2"), "{err}");
    // A shorter scale is widened without loss, as a numeric decimal written by another tool may be.
    let widened = br#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":10.5}"#;
    assert_eq!(
        on.to_connect_data(Some(widened)).expect("widened").1,
        Some(dec(1050, 2))
    );
    let time = br#"{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Time","version":1},"payload":86400000}"#;
    let err = on
        .to_connect_data(Some(time))
        .expect_err("not a time of day")
        .to_string();
    assert!(err.contains("not a time of day"), "{err}");
    let off = JsonConverter::new(false, DecimalFormat::Base64, true);
    assert_eq!(
        off.to_connect_data(None).expect("null record"),
        (None, None)
    );
}

/// One converter serving a stream of records with changing schemas (its schema cache hit and
/// missed in turn) writes exactly what the fixtures say.
#[test]
fn one_converter_for_a_stream_of_schemas_writes_the_same_bytes() {
    let cases = cases();
    let shared = JsonConverter::default();
    let mut checked = 0;
    for Fixture {
        name,
        converter,
        json,
    } in fixtures()
    {
        // Only the fixtures written with the shared converter's (Java's default) settings.
        let defaults = converter.schemas_enable()
            && converter.replace_null_with_default()
            && converter.decimal_format() == DecimalFormat::Base64;
        if !defaults {
            continue;
        }
        let (schema, value) = &cases[name.as_str()];
        for _ in 0..2 {
            let got = shared
                .from_connect_data(Some(schema), value.as_ref())
                .expect("converts");
            assert_eq!(
                got.map(|b| String::from_utf8(b).expect("utf-8")),
                json,
                "{name}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} cases");
}

/// One converter reading a stream of records with changing schemas (its parsed-schema cache
/// hit and missed in turn) reads what a fresh converter reads, and a bad schema after a good
/// one is still refused.
#[test]
fn one_converter_for_a_stream_of_schemas_reads_the_same_data() {
    let shared = JsonConverter::default();
    let mut checked = 0;
    for Fixture {
        converter, json, ..
    } in fixtures()
    {
        let Some(json) = json.filter(|_| converter.schemas_enable()) else {
            continue;
        };
        let fresh = JsonConverter::default().to_connect_data(Some(json.as_bytes()));
        for _ in 0..2 {
            let got = shared.to_connect_data(Some(json.as_bytes()));
            assert_eq!(format!("{got:?}"), format!("{fresh:?}"), "{json}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} cases");
    let good = br#"{"schema":{"type":"int8","optional":false},"payload":3}"#;
    assert!(shared.to_connect_data(Some(good)).is_ok());
    let err = shared
        .to_connect_data(Some(
            br#"{"schema":{"type":"int9","optional":false},"payload":3}"#,
        ))
        .expect_err("unknown type")
        .to_string();
    assert!(err.contains("Unknown schema type: int9"), "{err}");
    let err = shared
        .to_connect_data(Some(
            br#"{"schema":{"type":"int8" "optional":false},"payload":3}"#,
        ))
        .expect_err("not JSON")
        .to_string();
    assert!(
        err.contains("serialization error") && err.contains("byte 25"),
        "{err}"
    );
}
