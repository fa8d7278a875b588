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

#[test]
fn every_fixture_is_written_byte_for_byte() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/json-converter/json_converter.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("fixtures");
    let cases = cases();
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        let fx: serde_json::Value = serde_json::from_str(line).expect("fixture line");
        let name = fx["case"].as_str().expect("case");
        let (schema, value) = cases
            .get(name)
            .unwrap_or_else(|| panic!("no Rust case for fixture {name}"));
        let converter = JsonConverter {
            schemas_enable: fx["schemas_enable"].as_bool().expect("bool"),
            decimal_format: if fx["decimal_format"] == "NUMERIC" {
                DecimalFormat::Numeric
            } else {
                DecimalFormat::Base64
            },
            replace_null_with_default: fx["replace_null_with_default"].as_bool().expect("bool"),
        };
        let got = converter
            .from_connect_data(Some(schema), value.as_ref())
            .expect("converts")
            .map(|b| String::from_utf8(b).expect("utf-8"));
        let want = fx["json"].as_str().map(str::to_string);
        if got != want {
            failures.push(format!(
                "{name} {converter:?}\n  want {want:?}\n  got  {got:?}"
            ));
        }
        checked += 1;
    }
    assert!(checked >= 176, "only {checked} fixtures");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
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
