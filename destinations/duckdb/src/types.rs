//! dlt's type mapping for DuckDB (spec c.5).

use sluice_sdk::schema::{Column, DataType};

/// The DuckDB column type of a dlt column.
pub fn column_type(c: &Column) -> String {
    match c.data_type.unwrap_or(DataType::Text) {
        DataType::Text => "VARCHAR".into(),
        DataType::Bigint => match c.precision {
            Some(p) if p <= 8 => "TINYINT".into(),
            Some(p) if p <= 16 => "SMALLINT".into(),
            Some(p) if p <= 32 => "INTEGER".into(),
            Some(p) if p > 64 => "HUGEINT".into(),
            _ => "BIGINT".into(),
        },
        DataType::Double => "DOUBLE".into(),
        DataType::Bool => "BOOLEAN".into(),
        DataType::Timestamp => {
            if c.timezone.unwrap_or(true) {
                "TIMESTAMP WITH TIME ZONE".into()
            } else {
                match c.precision {
                    Some(0) => "TIMESTAMP_S".into(),
                    Some(p) if p <= 3 => "TIMESTAMP_MS".into(),
                    Some(p) if p > 6 => "TIMESTAMP_NS".into(),
                    _ => "TIMESTAMP".into(),
                }
            }
        }
        DataType::Date => "DATE".into(),
        DataType::Time => "TIME".into(),
        DataType::Decimal => {
            let p = c.precision.unwrap_or(38).clamp(1, 38);
            // dlt fills a missing scale from its default 9 (precision 10 alone: DECIMAL(10,9));
            // one above the precision is lowered to it (DuckDB refuses it)
            let s = c.scale.unwrap_or(9).min(p);
            format!("DECIMAL({p},{s})")
        }
        DataType::Wei => "DECIMAL(38,0)".into(),
        DataType::Binary => "BLOB".into(),
        DataType::Json => "JSON".into(),
    }
}

pub use sluice_sql::jobs::{literal, quote};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_dlt() {
        let mut c = Column::new("x", DataType::Bigint);
        c.precision = Some(16);
        assert_eq!(column_type(&c), "SMALLINT");
        let mut t = Column::new("t", DataType::Timestamp);
        assert_eq!(column_type(&t), "TIMESTAMP WITH TIME ZONE");
        t.timezone = Some(false);
        t.precision = Some(3);
        assert_eq!(column_type(&t), "TIMESTAMP_MS");
        let mut d = Column::new("d", DataType::Decimal);
        assert_eq!(column_type(&d), "DECIMAL(38,9)");
        d.precision = Some(10);
        d.scale = Some(2);
        assert_eq!(column_type(&d), "DECIMAL(10,2)");
        d.scale = None;
        assert_eq!(column_type(&d), "DECIMAL(10,9)");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
