//! Round trips: Arrow batches of every type the encoder writes, read back to the same batch;
//! numerics of every scale; and a table of every type copied out of the machine's PostgreSQL
//! and back in.

use std::sync::Arc;

use arrow_array::types::{Decimal128Type, Decimal256Type};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, PrimitiveArray, RecordBatch, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_buffer::i256;

use super::encode::{put_numeric, put_numeric_digits};
use super::*;

/// 10^38 - 1, the largest decimal(38, s) unscaled value.
const MAX38: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

fn dec128(values: Vec<Option<i128>>, p: u8, s: i8) -> ArrayRef {
    Arc::new(
        PrimitiveArray::<Decimal128Type>::from(values)
            .with_precision_and_scale(p, s)
            .expect("precision"),
    )
}

fn big(text: &str) -> i256 {
    i256::from_string(text).expect("i256")
}

/// One column of each kind, six rows: extremes, zero and empty values, a NULL in every column.
fn every_type() -> (RecordBatch, Vec<PgType>) {
    let micros = vec![
        Some(-2_208_988_800_000_000),  // 1900-01-01
        Some(-62_135_596_800_000_000), // 0001-01-01
        Some(0),                       // 1970-01-01
        None,
        Some(253_402_300_799_999_999), // 9999-12-31 23:59:59.999999
        Some(946_684_799_999_999),     // a microsecond before 2000
    ];
    let columns: Vec<(&str, ArrayRef, PgType)> = vec![
        (
            "bool",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                None,
                Some(true),
                Some(false),
            ])),
            PgType::Bool,
        ),
        (
            "int2",
            Arc::new(Int16Array::from(vec![
                Some(i16::MIN),
                Some(-1),
                Some(0),
                None,
                Some(i16::MAX),
                Some(7),
            ])),
            PgType::Int2,
        ),
        (
            "int4",
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(-1),
                Some(0),
                None,
                Some(i32::MAX),
                Some(7),
            ])),
            PgType::Int4,
        ),
        (
            "int8",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(-1),
                Some(0),
                None,
                Some(i64::MAX),
                Some(7),
            ])),
            PgType::Int8,
        ),
        (
            "float4",
            Arc::new(Float32Array::from(vec![
                Some(f32::MIN_POSITIVE),
                Some(-0.0),
                Some(f32::NAN),
                None,
                Some(f32::INFINITY),
                Some(-3.4e38),
            ])),
            PgType::Float4,
        ),
        (
            "float8",
            Arc::new(Float64Array::from(vec![
                Some(f64::MAX),
                Some(-0.0),
                Some(f64::NAN),
                None,
                Some(f64::NEG_INFINITY),
                Some(5e-324),
            ])),
            PgType::Float8,
        ),
        (
            "dec_38_9",
            dec128(
                vec![
                    Some(-MAX38),
                    Some(-1),
                    Some(0),
                    None,
                    Some(MAX38),
                    Some(123_456_789_012),
                ],
                38,
                9,
            ),
            PgType::Numeric,
        ),
        (
            "dec_38_0",
            dec128(
                vec![
                    Some(-MAX38),
                    Some(-5),
                    Some(0),
                    None,
                    Some(MAX38),
                    Some(10i128.pow(30)),
                ],
                38,
                0,
            ),
            PgType::Numeric,
        ),
        (
            "dec_38_38",
            dec128(
                vec![
                    Some(MAX38),
                    Some(-1),
                    Some(0),
                    None,
                    Some(5),
                    Some(-(10i128.pow(37))),
                ],
                38,
                38,
            ),
            PgType::Numeric,
        ),
        (
            "dec_10_2",
            dec128(
                vec![
                    Some(-12_345),
                    Some(1),
                    Some(0),
                    None,
                    Some(9_999_999_999),
                    Some(100),
                ],
                10,
                2,
            ),
            PgType::Numeric,
        ),
        (
            "dec256",
            Arc::new(
                PrimitiveArray::<Decimal256Type>::from(vec![
                    Some(big(&format!("-{}", "9".repeat(76)))),
                    Some(big("-1")),
                    Some(i256::ZERO),
                    None,
                    Some(big(&"9".repeat(76))),
                    Some(big(
                        "1000000000000000000000000000000000000000000000000000000000000000000000000",
                    )),
                ])
                .with_precision_and_scale(76, 20)
                .expect("precision"),
            ),
            PgType::Numeric,
        ),
        (
            "text",
            Arc::new(StringArray::from(vec![
                Some(""),
                Some("ünïcødé 😀 漢字"),
                Some("tab\tnew\nline"),
                None,
                Some("'quoted' \"twice\" \\"),
                Some("x"),
            ])),
            PgType::Text,
        ),
        (
            "json",
            Arc::new(StringArray::from(vec![
                Some("{}"),
                Some("[1, \"ü\"]"),
                Some("null"),
                None,
                Some("\"\""),
                Some("{\"a\": {\"b\": [true]}}"),
            ])),
            PgType::Json,
        ),
        (
            "jsonb",
            Arc::new(StringArray::from(vec![
                Some("{}"),
                Some("[1, \"ü\"]"),
                Some("null"),
                None,
                Some("\"\""),
                Some("{\"a\": {\"b\": [true]}}"),
            ])),
            PgType::Jsonb,
        ),
        (
            "bytea",
            Arc::new(BinaryArray::from(vec![
                Some(&b""[..]),
                Some(&b"\0\xff"[..]),
                Some(&b"PGCOPY\n\xff\r\n\0"[..]),
                None,
                Some(&[7u8; 300][..]),
                Some(&b"x"[..]),
            ])),
            PgType::Bytea,
        ),
        (
            "uuid",
            Arc::new(StringArray::from(vec![
                Some("00000000-0000-0000-0000-000000000000"),
                Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
                Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                None,
                Some("01234567-89ab-cdef-0123-456789abcdef"),
                Some("00000000-0000-0000-0000-000000000001"),
            ])),
            PgType::Uuid,
        ),
        (
            "uuid_bytes",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![
                        Some([0u8; 16]),
                        Some([255; 16]),
                        Some([1; 16]),
                        None,
                        Some([9; 16]),
                        Some([0x7f; 16]),
                    ]
                    .into_iter(),
                    16,
                )
                .expect("uuids"),
            ),
            PgType::Uuid,
        ),
        (
            "date",
            Arc::new(Date32Array::from(vec![
                Some(-25_567),
                Some(-719_162),
                Some(0),
                None,
                Some(2_932_896),
                Some(10_956),
            ])),
            PgType::Date,
        ),
        (
            "time",
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(0),
                Some(86_399_999_999),
                Some(1),
                None,
                Some(43_200_000_000),
                Some(12_345_678),
            ])),
            PgType::Time,
        ),
        (
            "timestamp",
            Arc::new(TimestampMicrosecondArray::from(micros.clone())),
            PgType::Timestamp,
        ),
        (
            "timestamptz",
            Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC")),
            PgType::Timestamp,
        ),
    ];
    let types = columns.iter().map(|c| c.2).collect();
    let batch =
        RecordBatch::try_from_iter(columns.into_iter().map(|(n, a, _)| (n, a))).expect("batch");
    (batch, types)
}

fn encode(batch: &RecordBatch, types: &[PgType]) -> Vec<u8> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(types)
        .map(|(f, ty)| Column::new(f.name(), *ty))
        .collect();
    let mut stream = HEADER.to_vec();
    Encoder::new("t", columns)
        .encode(batch, &mut stream)
        .expect("encode");
    stream.extend_from_slice(TRAILER);
    stream
}

fn decode(
    schema: arrow_schema::SchemaRef,
    types: &[PgType],
    chunks: impl IntoIterator<Item = Vec<u8>>,
) -> RecordBatch {
    let mut d = ArrowDecoder::new(schema, types).expect("decoder");
    for c in chunks {
        d.decode(&c).expect("decode");
    }
    assert!(d.is_finished(), "the trailer was read");
    d.batch().expect("batch")
}

#[test]
fn batches_of_every_type_read_back_equal_in_any_chunking() {
    let (batch, types) = every_type();
    let stream = encode(&batch, &types);
    for size in [1, 2, 7, 19, 100, stream.len()] {
        let back = decode(
            batch.schema(),
            &types,
            stream.chunks(size).map(<[u8]>::to_vec),
        );
        assert_eq!(back, batch, "chunks of {size} bytes");
    }
    // and written again, the same bytes
    assert_eq!(encode(&batch, &types), stream);
}

#[test]
fn an_empty_batch_is_a_header_and_a_trailer() {
    let (batch, types) = every_type();
    let empty = batch.slice(0, 0);
    let stream = encode(&empty, &types);
    assert_eq!(stream, [HEADER, TRAILER].concat());
    assert_eq!(decode(batch.schema(), &types, [stream]).num_rows(), 0);
}

#[test]
fn a_stream_cut_before_its_trailer_is_not_finished() {
    let (batch, types) = every_type();
    let stream = encode(&batch, &types);
    let mut d = ArrowDecoder::new(batch.schema(), &types).expect("decoder");
    d.decode(&stream[..stream.len() - 2]).expect("decode");
    assert!(!d.is_finished());
    assert_eq!(d.batch().expect("batch").num_rows(), 6);
}

#[test]
fn numerics_of_every_scale_read_back_at_their_scale_and_rescaled() {
    let mut values = vec![
        0i128,
        1,
        -1,
        9,
        10,
        9999,
        10_000,
        10_001,
        123_456_789,
        MAX38,
        -MAX38,
    ];
    for e in 0..38 {
        let p = 10i128.pow(e);
        values.extend([p, -p, p - 1, p + 1, 5 * p]);
    }
    for scale in [0i8, 1, 2, 3, 4, 5, 8, 9, 17, 37, 38] {
        for &v in &values {
            let mut field = Vec::new();
            put_numeric(&mut field, v, scale);
            let mut text = Vec::new();
            put_numeric_digits(&mut text, &v.to_string(), scale);
            assert_eq!(field, text, "{v} at scale {scale}");
            let body = &field[4..];
            assert_eq!(decode::numeric(body, scale), Ok(v), "{v} at scale {scale}");
            assert_eq!(
                decode::numeric_i256(body, scale),
                Ok(i256::from_i128(v)),
                "{v} at scale {scale}"
            );
            // one digit more: ten times the value, when it fits
            if let Some(ten) = v.checked_mul(10) {
                assert_eq!(
                    decode::numeric(body, scale + 1),
                    Ok(ten),
                    "{v} at scale {scale}+1"
                );
            }
            // one digit less: rounded half away from zero
            let q = v / 10;
            let r = v % 10;
            let want = if r.abs() >= 5 { q + v.signum() } else { q };
            assert_eq!(
                decode::numeric(body, scale - 1),
                Ok(want),
                "{v} at scale {scale}-1"
            );
        }
    }
}

#[test]
fn uuids_print_and_parse() {
    let b: [u8; 16] = std::array::from_fn(|i| i as u8);
    let mut buf = [0u8; 36];
    let text = uuid_text(&b, &mut buf);
    assert_eq!(text, "00010203-0405-0607-0809-0a0b0c0d0e0f");
    assert_eq!(uuid_parse(text), Some(b));
    assert_eq!(uuid_parse("{000102030405060708090A0B0C0D0E0F}"), Some(b));
    for bad in [
        "",
        "0001",
        "00010203-0405-0607-0809-0a0b0c0d0e0",
        "-00010203040506070809-0a0b0c0d0e0f",
        "zz010203-0405-0607-0809-0a0b0c0d0e0f",
    ] {
        assert_eq!(uuid_parse(bad), None, "{bad}");
    }
}

#[test]
fn values_out_of_their_column_type_are_refused_naming_column_and_table() {
    let batch = RecordBatch::try_from_iter([
        (
            "small",
            Arc::new(Int64Array::from(vec![70_000])) as ArrayRef,
        ),
        (
            "id",
            Arc::new(StringArray::from(vec!["not-a-uuid"])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let e = Encoder::new(
        "t",
        vec![
            Column::new("small", PgType::Int2),
            Column::new("id", PgType::Text),
        ],
    )
    .encode(&batch, &mut Vec::new())
    .expect_err("too wide");
    assert!(
        e.to_string()
            .contains("column `small` of table `t`: 70000 does not fit smallint"),
        "{e}"
    );
    let e = Encoder::new(
        "t",
        vec![
            Column::new("small", PgType::Int8),
            Column::new("id", PgType::Uuid),
        ],
    )
    .encode(&batch, &mut Vec::new())
    .expect_err("no uuid");
    assert!(
        e.to_string()
            .contains("column `id` of table `t`: `not-a-uuid` is not a UUID"),
        "{e}"
    );
    let e = Encoder::new(
        "t",
        vec![
            Column::new("small", PgType::Float4),
            Column::new("id", PgType::Text),
        ],
    )
    .encode(
        &RecordBatch::try_from_iter([
            (
                "small",
                Arc::new(Float64Array::from(vec![1e300])) as ArrayRef,
            ),
            ("id", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
        ])
        .expect("batch"),
        &mut Vec::new(),
    )
    .expect_err("too large for real");
    assert!(e.to_string().contains("out of the range of real"), "{e}");
}

#[test]
fn values_are_converted_to_the_column_type() {
    // integers of any width, decimals from integers at the column's scale, text from numbers
    let batch = RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int32Array::from(vec![Some(-3), None])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(Int64Array::from(vec![Some(12), Some(-7)])) as ArrayRef,
        ),
        (
            "c",
            Arc::new(Int64Array::from(vec![Some(5), None])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let columns = vec![
        Column::new("a", PgType::Int8),
        Column::new("b", PgType::Numeric).with_scale(2),
        Column::new("c", PgType::Text),
    ];
    let mut stream = HEADER.to_vec();
    Encoder::new("t", columns)
        .encode(&batch, &mut stream)
        .expect("encode");
    stream.extend_from_slice(TRAILER);
    let want = RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int64Array::from(vec![Some(-3), None])) as ArrayRef,
        ),
        ("b", dec128(vec![Some(1200), Some(-700)], 38, 2)),
        (
            "c",
            Arc::new(StringArray::from(vec![Some("5"), None])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let types = [PgType::Int8, PgType::Numeric, PgType::Text];
    assert_eq!(decode(want.schema(), &types, [stream]), want);
}

/// The machine's PostgreSQL: a table of every type copied out in binary, read into Arrow,
/// written back byte for byte the same, copied into a second table that copies out the same.
#[cfg(feature = "postgres")]
mod server {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use futures::StreamExt;
    use sqlx::{Connection, PgConnection};

    /// The machine's PostgreSQL server (as the workspace tests use it).
    fn url() -> String {
        std::env::var("SLUICE_TEST_PG_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_string())
    }

    const COLUMNS: &str = "id int4, b bool, i2 int2, i8 int8, f4 float4, f8 float8, \
        n9 numeric(38,9), n0 numeric(38,0), n38 numeric(38,38), t text, v varchar(20), \
        j json, jb jsonb, by bytea, u uuid, d date, tm time, ts timestamp, tz timestamptz";

    const ROWS: &str = r#"
        (1, true, -32768, -9223372036854775808, 'NaN', '-Infinity',
         '-99999999999999999999999999999.999999999', '-99999999999999999999999999999999999999',
         '0.99999999999999999999999999999999999999', '', '', '{}', '{"a": [1, "ü"], "b": null}',
         '\x', '00000000-0000-0000-0000-000000000000', '1900-01-01', '00:00', '1900-01-01 00:00',
         '0001-01-01 00:00+00'),
        (2, false, 32767, 9223372036854775807, 1.5, 1e308, '0.000000001', 0, '-0.5',
         'ünïcødé 😀 漢字', 'x', '[1,2]', 'null', '\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999', '2000-01-01 00:00+00'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL),
        (4, true, 0, 0, '-Infinity', -0.0, 12345.678901234, 100000000, 0, 'tab	new
line', 'end', '"ü"', '[]', '\xdeadbeef', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '1999-12-31',
         '12:00', '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00.000001+00')"#;

    fn schema() -> Arc<Schema> {
        let f = |n: &str, t: DataType| Field::new(n, t, true);
        Arc::new(Schema::new(vec![
            f("id", DataType::Int32),
            f("b", DataType::Boolean),
            f("i2", DataType::Int16),
            f("i8", DataType::Int64),
            f("f4", DataType::Float32),
            f("f8", DataType::Float64),
            f("n9", DataType::Decimal128(38, 9)),
            f("n0", DataType::Decimal128(38, 0)),
            f("n38", DataType::Decimal128(38, 38)),
            f("t", DataType::Utf8),
            f("v", DataType::Utf8),
            f("j", DataType::Utf8),
            f("jb", DataType::Utf8),
            f("by", DataType::Binary),
            f("u", DataType::Utf8),
            f("d", DataType::Date32),
            f("tm", DataType::Time64(TimeUnit::Microsecond)),
            f("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
            f(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
        ]))
    }

    const TYPES: [PgType; 19] = [
        PgType::Int4,
        PgType::Bool,
        PgType::Int2,
        PgType::Int8,
        PgType::Float4,
        PgType::Float8,
        PgType::Numeric,
        PgType::Numeric,
        PgType::Numeric,
        PgType::Text,
        PgType::Text,
        PgType::Json,
        PgType::Jsonb,
        PgType::Bytea,
        PgType::Uuid,
        PgType::Date,
        PgType::Time,
        PgType::Timestamp,
        PgType::Timestamp,
    ];

    async fn copy_out(con: &mut PgConnection, table: &str) -> Vec<Vec<u8>> {
        let statement =
            format!("COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT (FORMAT binary)");
        let mut stream = con.copy_out_raw(&statement).await.expect("copy out");
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk.expect("chunk").to_vec());
        }
        chunks
    }

    #[test]
    fn a_table_of_every_type_copies_out_and_back_in_unchanged() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut con = PgConnection::connect(&url()).await.expect("connect");
            let setup = format!(
                "CREATE TEMP TABLE pgcopy_src ({COLUMNS}); CREATE TEMP TABLE pgcopy_dst ({COLUMNS}); \
                 INSERT INTO pgcopy_src VALUES {ROWS}"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
                .execute(&mut con)
                .await
                .expect("tables");
            let chunks = copy_out(&mut con, "pgcopy_src").await;
            let original = chunks.concat();
            let batch = decode(schema(), &TYPES, chunks);
            assert_eq!(batch.num_rows(), 4);

            // what the server sent, as Arrow
            let n9 = batch.column(6).as_primitive::<Decimal128Type>();
            assert_eq!((n9.value(0), n9.value(1), n9.value(3)), (-MAX38, 1, 12_345_678_901_234));
            let n38 = batch.column(8).as_primitive::<Decimal128Type>();
            assert_eq!((n38.value(0), n38.value(1)), (MAX38, -(5 * 10i128.pow(37))));
            let text = batch.column(9).as_string::<i32>();
            assert_eq!((text.value(0), text.value(1)), ("", "ünïcødé 😀 漢字"));
            assert!(batch.column(9).is_null(2));
            let jsonb = batch.column(12).as_string::<i32>();
            assert_eq!(jsonb.value(0), r#"{"a": [1, "ü"], "b": null}"#);
            let uuid = batch.column(14).as_string::<i32>();
            assert_eq!(uuid.value(1), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
            let ts = batch.column(17).as_primitive::<arrow_array::types::TimestampMicrosecondType>();
            assert_eq!((ts.value(0), ts.value(3)), (-2_208_988_800_000_000, 946_684_799_999_999));
            let tz = batch.column(18).as_primitive::<arrow_array::types::TimestampMicrosecondType>();
            assert_eq!((tz.value(0), tz.value(3)), (-62_135_596_800_000_000, 1));
            let d = batch.column(15).as_primitive::<arrow_array::types::Date32Type>();
            assert_eq!((d.value(0), d.value(1), d.value(3)), (-25_567, 2_932_896, 10_956));

            // written again: the bytes the server sent
            let written = encode(&batch, &TYPES);
            assert_eq!(written, original, "re-encoded stream differs");

            // and loaded: the server takes them and sends them back the same
            let mut copy_in = con
                .copy_in_raw("COPY pgcopy_dst FROM STDIN (FORMAT binary)")
                .await
                .expect("copy in");
            for chunk in written.chunks(1000) {
                copy_in.send(chunk).await.expect("send");
            }
            assert_eq!(copy_in.finish().await.expect("finish"), 4);
            assert_eq!(copy_out(&mut con, "pgcopy_dst").await.concat(), original);
        });
    }
}
