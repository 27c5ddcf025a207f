//! Load files as binary COPY (`COPY ... FROM STDIN (FORMAT binary)`): which wire form each
//! column of a load file is sent in. The format itself (header, tuples, each type's bytes,
//! Arrow conversions) is [`sluice_sql::pgcopy`]'s; what is the destination's own is the type
//! dlt makes for each column, and which types of an existing column hold its values.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_schema::Schema as ArrowSchema;
use sluice_sdk::schema::{DataType, Table};
use sluice_sdk::{Error, Result};
use sluice_sql::pgcopy::{self, Column};

use crate::types::{pg_type, PgType};

pub use sluice_sql::pgcopy::{HEADER, TRAILER};

/// Encodes batches of one load file for one table.
#[derive(Debug, Clone)]
pub struct Encoder {
    inner: pgcopy::Encoder,
    /// The type dlt makes for each column, in file order.
    dlt_types: Vec<PgType>,
}

impl Encoder {
    /// An encoder for batches with `file_schema` into `table` (its columns by name), each
    /// column in the wire form of the type dlt makes for it.
    pub fn new(table: &Table, file_schema: &ArrowSchema) -> Result<Self> {
        let mut columns = Vec::with_capacity(file_schema.fields().len());
        let mut dlt_types = Vec::with_capacity(file_schema.fields().len());
        for f in file_schema.fields() {
            let column = table
                .columns
                .get(f.name())
                .filter(|c| c.is_complete())
                .ok_or_else(|| {
                    Error::schema(format!(
                        "the load file of table `{}` has column `{}`, which the schema does not have",
                        table.name,
                        f.name()
                    ))
                })?;
            let scale = match column.data_type {
                Some(DataType::Decimal) => crate::types::decimal(column).1.min(38) as i8,
                _ => 0,
            };
            let ty = pg_type(column)?;
            columns.push(Column::new(column.name.clone(), ty).with_scale(scale));
            dlt_types.push(ty);
        }
        Ok(Self {
            inner: pgcopy::Encoder::new(table.name.clone(), columns),
            dlt_types,
        })
    }

    /// The encoder for the columns as the server has them: `actual` maps each column of
    /// `dataset.table` to its type (`pg_type.typname`). Values are sent in the wire form of
    /// that type when it holds them without loss (`json` without jsonb's version byte,
    /// `integer` or `real` with the range checked, text as json); a column of another kind
    /// (a `numeric` or `integer` column where dlt has a double, say) is refused rather than
    /// rounded.
    pub fn for_columns(mut self, dataset: &str, actual: &BTreeMap<String, String>) -> Result<Self> {
        let table = self.inner.table().to_string();
        for (c, dlt) in self.inner.columns_mut().iter_mut().zip(&self.dlt_types) {
            let Some(typname) = actual.get(&c.name) else {
                return Err(Error::schema(format!(
                    "table `{dataset}.{table}` has no column `{}` to load into\nhint: the table was changed outside sluice; add the column or drop the table",
                    c.name
                )));
            };
            let ty = PgType::from_catalog(typname).filter(|ty| holds(*dlt, *ty));
            c.ty = ty.ok_or_else(|| {
                Error::schema(format!(
                    "column `{}` of table `{dataset}.{table}` has PostgreSQL type `{typname}`, which cannot hold the column's values ({}) without change\nhint: alter the column to {}, or drop the table and let sluice create it",
                    c.name,
                    dlt.sql_name(),
                    dlt.sql_name()
                ))
            })?;
        }
        Ok(self)
    }

    /// The quoted column list of the COPY statement, in file order.
    pub fn column_list(&self) -> String {
        self.inner.column_list()
    }

    /// Appends the rows of `batch` (columns in the file's order) to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.inner.encode(batch, out)
    }
}

/// Whether a column of type `actual` holds the values dlt types as `dlt` without change: the
/// same type, another integer width or `real` (range-checked per value), an integer in
/// `numeric`, or text and JSON in each other (the server checks the JSON).
fn holds(dlt: PgType, actual: PgType) -> bool {
    use PgType::*;
    dlt == actual
        || matches!(
            (dlt, actual),
            (Int2 | Int4 | Int8, Int2 | Int4 | Int8 | Numeric)
                | (Float8, Float4)
                | (Text | Json | Jsonb, Text | Json | Jsonb)
        )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Date32Array, Int64Array, StringArray};
    use arrow_schema::{DataType as ArrowType, Field};

    use super::*;

    fn table() -> Table {
        let mut t = Table {
            name: "t".into(),
            ..Default::default()
        };
        let mut small = sluice_sdk::schema::Column::new("small", DataType::Bigint);
        small.precision = Some(16);
        for c in [
            small,
            sluice_sdk::schema::Column::new("name", DataType::Text),
            sluice_sdk::schema::Column::new("doc", DataType::Json),
            sluice_sdk::schema::Column::new("day", DataType::Date),
        ] {
            t.columns.insert(c.name.clone(), c);
        }
        t
    }

    fn schema() -> Arc<ArrowSchema> {
        Arc::new(ArrowSchema::new(vec![
            Field::new("name", ArrowType::Utf8, true),
            Field::new("small", ArrowType::Int64, true),
            Field::new("doc", ArrowType::Utf8, true),
            Field::new("day", ArrowType::Date32, true),
        ]))
    }

    #[test]
    fn rows_are_encoded_in_file_order_with_nulls() {
        let schema = schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("ab"), None])),
                Arc::new(Int64Array::from(vec![Some(7), Some(-2)])),
                Arc::new(StringArray::from(vec![Some("{}"), None])),
                Arc::new(Date32Array::from(vec![Some(10_958), None])),
            ],
        )
        .expect("batch");
        let enc = Encoder::new(&table(), &schema).expect("encoder");
        assert_eq!(enc.column_list(), r#""name", "small", "doc", "day""#);
        let mut out = Vec::new();
        enc.encode(&batch, &mut out).expect("encode");
        let mut want: Vec<u8> = Vec::new();
        want.extend(4i16.to_be_bytes());
        want.extend(2i32.to_be_bytes());
        want.extend(b"ab");
        want.extend(2i32.to_be_bytes());
        want.extend(7i16.to_be_bytes());
        want.extend(3i32.to_be_bytes());
        want.extend(b"\x01{}");
        want.extend(4i32.to_be_bytes());
        want.extend(1i32.to_be_bytes());
        want.extend(4i16.to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        want.extend(2i32.to_be_bytes());
        want.extend((-2i16).to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        assert_eq!(out, want);
        // a value too wide for smallint names the column and the table
        let big = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("x")])),
                Arc::new(Int64Array::from(vec![Some(70_000)])),
                Arc::new(StringArray::from(vec![Some("1")])),
                Arc::new(Date32Array::from(vec![Some(1)])),
            ],
        )
        .expect("batch");
        let e = enc.encode(&big, &mut out).expect_err("too wide");
        assert!(
            e.to_string()
                .contains("column `small` of table `t`: 70000 does not fit smallint"),
            "{e}"
        );
    }

    #[test]
    fn existing_columns_take_values_their_type_holds() {
        let enc = || Encoder::new(&table(), &schema()).expect("encoder");
        let actual = |doc: &str| -> BTreeMap<String, String> {
            [
                ("name", "text"),
                ("small", "int8"),
                ("doc", doc),
                ("day", "date"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        // json where dlt makes jsonb: the text without the version byte
        let e = enc()
            .for_columns("ds", &actual("json"))
            .expect("json holds json");
        let doc = e
            .inner
            .columns()
            .iter()
            .find(|c| c.name == "doc")
            .map(|c| c.ty);
        assert_eq!(doc, Some(PgType::Json));
        let err = enc()
            .for_columns("ds", &actual("uuid"))
            .expect_err("uuid does not hold json");
        assert!(
            err.to_string().contains("column `doc` of table `ds.t` has PostgreSQL type `uuid`, which cannot hold the column's values (jsonb)"),
            "{err}"
        );
        let mut missing = actual("jsonb");
        missing.remove("day");
        let err = enc().for_columns("ds", &missing).expect_err("no column");
        assert!(
            err.to_string().contains("table `ds.t` has no column `day`"),
            "{err}"
        );
    }
}
