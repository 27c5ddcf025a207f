//! The SELECT a table is read with: its columns, and the incremental window pushed into SQL as
//! dlt's sql_database does (spec h): `cursor >= start` (`>` with `range_start = "open"`),
//! `cursor < end` (`<=` with `range_end = "closed"`), the other way round for `min`,
//! `OR cursor IS NULL` with `on_cursor_value_missing = "include"`, `ORDER BY cursor` when
//! `row_order` is set. The host still filters and deduplicates the rows it gets.

use serde_json::Value;
use sluice_sdk::resource::IncrementalWindow;

use crate::model::{Kind, SqlColumn, TableInfo};

/// `name` quoted with `q`, the quote doubled inside.
pub fn quote_ident(name: &str, q: char) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push(q);
    for c in name.chars() {
        if c == q {
            s.push(q);
        }
        s.push(c);
    }
    s.push(q);
    s
}

/// What one read of a table selects.
pub struct ReadPlan<'a> {
    /// The table.
    pub table: &'a TableInfo,
    /// The columns read, in order.
    pub columns: Vec<&'a SqlColumn>,
    /// The incremental window, if the table has a cursor.
    pub window: Option<&'a IncrementalWindow>,
    /// At most this many rows (`add_limit`).
    pub limit_rows: Option<u64>,
    /// A condition of the read's own, ANDed to the window's (a PostgreSQL ctid range).
    pub range: Option<String>,
}

impl ReadPlan<'_> {
    /// The cursor column, when the window names one the table has.
    fn cursor(&self) -> Option<&SqlColumn> {
        let w = self.window?;
        self.table
            .columns
            .iter()
            .find(|c| c.name == w.spec.cursor_path)
    }

    /// `SELECT cols FROM from [WHERE ...] [ORDER BY ...]`; `lit(column, value)` writes a value
    /// as a literal of the column's type (`None`: no condition on it).
    pub fn select_sql(
        &self,
        cols: &str,
        from: &str,
        q: char,
        lit: impl Fn(&SqlColumn, &Value) -> Option<String>,
    ) -> String {
        let mut sql = format!("SELECT {cols} FROM {from}");
        self.push_window(&mut sql, q, lit);
        if let Some(n) = self.limit_rows {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        sql
    }

    fn push_window(
        &self,
        sql: &mut String,
        q: char,
        lit: impl Fn(&SqlColumn, &Value) -> Option<String>,
    ) {
        let mut where_: Vec<String> = self.range.iter().cloned().collect();
        let (Some(w), Some(c)) = (self.window, self.cursor()) else {
            if !where_.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&where_.join(" AND "));
            }
            return;
        };
        let ident = quote_ident(&c.name, q);
        let min = w.spec.last_value_func.as_deref() == Some("min");
        let mut conds = Vec::new();
        let comparable = !c.as_text && c.kind != Kind::Json;
        if comparable {
            if let Some(l) = w.start_value.as_ref().and_then(|v| lit(c, v)) {
                let open = w.spec.range_start.as_deref() == Some("open");
                let op = match (min, open) {
                    (false, false) => ">=",
                    (false, true) => ">",
                    (true, false) => "<=",
                    (true, true) => "<",
                };
                conds.push(format!("{ident} {op} {l}"));
            }
            if let Some(l) = w.end_value.as_ref().and_then(|v| lit(c, v)) {
                let closed = w.spec.range_end.as_deref() == Some("closed");
                let op = match (min, closed) {
                    (false, false) => "<",
                    (false, true) => "<=",
                    (true, false) => ">",
                    (true, true) => ">=",
                };
                conds.push(format!("{ident} {op} {l}"));
            }
        }
        if !conds.is_empty() {
            let mut cond = conds.join(" AND ");
            if w.spec.on_cursor_value_missing.as_deref() == Some("include") {
                cond = format!("({cond}) OR {ident} IS NULL");
            }
            where_.push(format!("({cond})"));
        }
        if !where_.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&where_.join(" AND "));
        }
        match w.spec.row_order.as_deref() {
            Some("asc") => sql.push_str(&format!(" ORDER BY {ident} ASC")),
            Some("desc") => sql.push_str(&format!(" ORDER BY {ident} DESC")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::literal;
    use serde_json::json;
    use sluice_sdk::resource::IncrementalSpec;

    fn table() -> TableInfo {
        TableInfo {
            name: "t".into(),
            columns: vec![SqlColumn {
                name: "up\"dated".into(),
                sql_type: "timestamp".into(),
                kind: Kind::Timestamp { tz: false },
                nullable: true,
                length: None,
                as_text: false,
            }],
            primary_key: vec![],
        }
    }

    fn window(spec: serde_json::Value, start: Option<serde_json::Value>) -> IncrementalWindow {
        IncrementalWindow {
            spec: serde_json::from_value::<IncrementalSpec>(spec).expect("spec"),
            start_value: start,
            last_value: None,
            end_value: None,
        }
    }

    #[test]
    fn the_window_becomes_where_and_order_by() {
        let t = table();
        let w = window(
            json!({"cursor_path": "up\"dated", "row_order": "asc", "on_cursor_value_missing": "include"}),
            Some(json!("2024-01-01 00:00:00")),
        );
        let plan = ReadPlan {
            table: &t,
            columns: t.columns.iter().collect(),
            window: Some(&w),
            limit_rows: None,
            range: None,
        };
        let sql = plan.select_sql("*", "\"s\".\"t\"", '"', |c, v| {
            literal(v).map(|l| format!("{l}::{}", c.sql_type))
        });
        assert_eq!(
            sql,
            "SELECT * FROM \"s\".\"t\" WHERE ((\"up\"\"dated\" >= '2024-01-01 00:00:00'::timestamp) OR \"up\"\"dated\" IS NULL) ORDER BY \"up\"\"dated\" ASC"
        );
        let mut w2 = window(
            json!({"cursor_path": "up\"dated", "last_value_func": "min", "range_start": "open"}),
            Some(json!("x'y")),
        );
        w2.end_value = Some(json!("a"));
        let plan = ReadPlan {
            window: Some(&w2),
            ..plan
        };
        let sql = plan.select_sql("*", "t", '`', |_, v| literal(v));
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE (`up\"dated` < 'x''y' AND `up\"dated` > 'a')"
        );
        // a read's own range is ANDed to the window
        let ranged = ReadPlan {
            range: Some("ctid >= '(0,0)'::tid".into()),
            ..plan
        };
        assert_eq!(
            ranged.select_sql("*", "t", '`', |_, v| literal(v)),
            "SELECT * FROM t WHERE ctid >= '(0,0)'::tid AND (`up\"dated` < 'x''y' AND `up\"dated` > 'a')"
        );
        let plan = ReadPlan {
            range: None,
            ..ranged
        };
        assert_eq!(
            plan.select_sql("*", "t", '"', |_, _| None),
            "SELECT * FROM t",
            "no literal for the cursor: no condition"
        );
        let plan = ReadPlan {
            window: None,
            limit_rows: Some(10),
            ..plan
        };
        assert_eq!(
            plan.select_sql("*", "t", '"', |_, v| literal(v)),
            "SELECT * FROM t LIMIT 10"
        );
    }
}
