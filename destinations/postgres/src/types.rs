//! dlt's type mapping for PostgreSQL (spec c.5, dlt's `PostgresTypeMapper`), and the dialect of
//! the shared statements.

use sluice_sdk::schema::{Column, DataType};
use sluice_sdk::{Error, Result};
use sluice_sql::jobs::SqlDialect;

/// dlt's default decimal precision and scale.
pub const DECIMAL: (u32, u32) = (38, 9);
/// dlt's wei precision and scale on PostgreSQL: `numeric(156,78)`.
pub const WEI: (u32, u32) = (156, 78);
/// PostgreSQL's longest identifier.
pub const MAX_IDENTIFIER: usize = 63;
/// PostgreSQL keeps microseconds.
pub const TIMESTAMP_PRECISION: u32 = 6;

/// The wire form a column is loaded in with binary COPY (shared with the sql_database
/// source's reads).
pub use sluice_sql::pgcopy::PgType;

/// Integer precision in bits to a PostgreSQL integer type (dlt: none -> bigint, <= 16
/// smallint, <= 32 integer, <= 64 bigint, wider is an error).
fn integer(c: &Column) -> Result<(PgType, &'static str)> {
    Ok(match c.precision {
        None => (PgType::Int8, "bigint"),
        Some(p) if p <= 16 => (PgType::Int2, "smallint"),
        Some(p) if p <= 32 => (PgType::Int4, "integer"),
        Some(p) if p <= 64 => (PgType::Int8, "bigint"),
        Some(p) => {
            return Err(Error::schema(format!(
                "column `{}`: bigint with precision {p} can't be mapped to a PostgreSQL integer type\nhint: give the column data_type decimal (numeric) instead",
                c.name
            )))
        }
    })
}

/// The wire type of a dlt column.
pub fn pg_type(c: &Column) -> Result<PgType> {
    Ok(match c.data_type.unwrap_or(DataType::Text) {
        DataType::Text => PgType::Text,
        DataType::Bigint => integer(c)?.0,
        DataType::Double => PgType::Float8,
        DataType::Bool => PgType::Bool,
        DataType::Timestamp => PgType::Timestamp,
        DataType::Date => PgType::Date,
        DataType::Time => PgType::Time,
        DataType::Decimal | DataType::Wei => PgType::Numeric,
        DataType::Binary => PgType::Bytea,
        DataType::Json => PgType::Jsonb,
    })
}

/// The precision and scale of a decimal column as dlt fills them in: each missing one from
/// dlt's default (38, 9), so `precision: 10` alone is `numeric(10,9)`. A scale above the
/// precision is lowered to it (dlt passes it on and the server refuses it before PostgreSQL 15).
pub fn decimal(c: &Column) -> (u32, u32) {
    let p = c.precision.unwrap_or(DECIMAL.0).max(1);
    let s = c.scale.unwrap_or(DECIMAL.1).min(p);
    (p, s)
}

/// Fractional digits of a timestamp or time: at most PostgreSQL's 6 (a wider precision, e.g.
/// nanoseconds from an Arrow source, is kept to microseconds; dlt refuses it).
fn fraction(p: u32) -> u32 {
    p.min(TIMESTAMP_PRECISION)
}

/// The PostgreSQL type of a dlt column, as dlt writes it in DDL.
pub fn column_type(c: &Column) -> Result<String> {
    Ok(match c.data_type.unwrap_or(DataType::Text) {
        DataType::Text => match c.precision {
            Some(p) => format!("varchar({p})"),
            None => "varchar".into(),
        },
        DataType::Bigint => integer(c)?.1.into(),
        DataType::Double => "double precision".into(),
        DataType::Bool => "boolean".into(),
        DataType::Timestamp => {
            let zone = if c.timezone.unwrap_or(true) {
                "with time zone"
            } else {
                "without time zone"
            };
            match c.precision {
                Some(p) => format!("timestamp ({}) {zone}", fraction(p)),
                None => format!("timestamp {zone}"),
            }
        }
        DataType::Date => "date".into(),
        DataType::Time => match c.precision {
            Some(p) => format!("time ({}) without time zone", fraction(p)),
            None => "time without time zone".into(),
        },
        DataType::Decimal => {
            let (p, s) = decimal(c);
            format!("numeric({p},{s})")
        }
        DataType::Wei => format!("numeric({},{})", WEI.0, WEI.1),
        DataType::Binary => "bytea".into(),
        DataType::Json => "jsonb".into(),
    })
}

/// PostgreSQL's dialect of the shared statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl SqlDialect for Postgres {
    fn column_type(&self, column: &Column) -> Result<String> {
        column_type(column)
    }

    /// A freshly filled staging table keeps COPY's order in its `ctid`s.
    fn load_order(&self) -> &'static str {
        "ctid"
    }

    fn max_identifier_length(&self) -> usize {
        MAX_IDENTIFIER
    }

    /// Staging tables are scratch space emptied before every use: `UNLOGGED` skips the WAL
    /// (a crash empties them, which the next load does anyway).
    fn create_table_keyword(&self, staging: bool) -> &'static str {
        if staging {
            "CREATE UNLOGGED TABLE"
        } else {
            "CREATE TABLE"
        }
    }

    fn truncate(&self, qualified_table: &str) -> String {
        format!("TRUNCATE {qualified_table}")
    }

    /// One `TRUNCATE` of all the tables: one lock round and one catalog change.
    fn empty_tables(&self, qualified_tables: &[String]) -> Vec<String> {
        if qualified_tables.is_empty() {
            return Vec::new();
        }
        vec![format!("TRUNCATE {}", qualified_tables.join(", "))]
    }

    fn supports_swap(&self) -> bool {
        true
    }

    /// `staging-optimized`: the staging table takes the table's place (dlt's
    /// PostgresStagingReplaceJob), and an empty staging table is made again.
    fn swap_in(&self, dataset: &str, staging: &str, table: &str) -> Vec<String> {
        let d = sluice_sql::jobs::qualified(dataset, table);
        let s = sluice_sql::jobs::qualified(staging, table);
        vec![
            format!("DROP TABLE IF EXISTS {d}"),
            format!(
                "ALTER TABLE {s} SET SCHEMA {}",
                sluice_sql::jobs::quote(dataset)
            ),
            // a staging table made by a merge is unlogged: the swapped-in table must not be
            // (a no-op for the logged staging tables this strategy creates)
            format!("ALTER TABLE {d} SET LOGGED"),
            format!("CREATE TABLE {s} (LIKE {d} INCLUDING ALL)"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_dlt() {
        let mut c = Column::new("x", DataType::Bigint);
        assert_eq!(column_type(&c).expect("t"), "bigint");
        c.precision = Some(16);
        assert_eq!(column_type(&c).expect("t"), "smallint");
        c.precision = Some(32);
        assert_eq!(column_type(&c).expect("t"), "integer");
        c.precision = Some(128);
        let e = column_type(&c).expect_err("too wide");
        assert!(e.to_string().contains("decimal"), "{e}");
        let mut t = Column::new("t", DataType::Timestamp);
        assert_eq!(column_type(&t).expect("t"), "timestamp with time zone");
        t.timezone = Some(false);
        t.precision = Some(3);
        assert_eq!(
            column_type(&t).expect("t"),
            "timestamp (3) without time zone"
        );
        t.precision = Some(9);
        assert_eq!(
            column_type(&t).expect("t"),
            "timestamp (6) without time zone"
        );
        let mut d = Column::new("d", DataType::Decimal);
        assert_eq!(column_type(&d).expect("t"), "numeric(38,9)");
        d.precision = Some(10);
        d.scale = Some(2);
        assert_eq!(column_type(&d).expect("t"), "numeric(10,2)");
        // dlt fills a missing scale from its default 9, not 0
        d.scale = None;
        assert_eq!(column_type(&d).expect("t"), "numeric(10,9)");
        d.precision = Some(4);
        assert_eq!(column_type(&d).expect("t"), "numeric(4,4)");
        let mut s = Column::new("s", DataType::Text);
        assert_eq!(column_type(&s).expect("t"), "varchar");
        s.precision = Some(64);
        assert_eq!(column_type(&s).expect("t"), "varchar(64)");
        for (ty, want) in [
            (DataType::Double, "double precision"),
            (DataType::Bool, "boolean"),
            (DataType::Date, "date"),
            (DataType::Time, "time without time zone"),
            (DataType::Wei, "numeric(156,78)"),
            (DataType::Binary, "bytea"),
            (DataType::Json, "jsonb"),
        ] {
            assert_eq!(column_type(&Column::new("c", ty)).expect("t"), want);
        }
    }
}
