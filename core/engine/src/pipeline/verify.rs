//! A package's schema checked against the destination's capabilities before it is loaded, as
//! dlt's `verify_schema_capabilities` and `resolve_merge_strategy` do: no two table names (or
//! two column names of a table) that the destination would store as one identifier, no
//! identifier longer than it takes, and a merge strategy it has.
//!
//! A problem is a configuration error, not a failed package: the package stays pending (as in
//! dlt, where `verify_schema` raises before any job runs) and nothing reached the destination;
//! it loads to a destination that takes it, or is discarded (`drop-pending-packages`).

use std::collections::HashMap;

use sluice_sdk::schema::{Schema, Table, WriteDisposition};
use sluice_sdk::Capabilities;

use crate::{Error, Result};

/// Refuses `schema` on a destination with `caps`, naming every problem found.
pub(super) fn check(
    schema: &Schema,
    caps: &Capabilities,
    destination: &str,
    pipeline: &str,
) -> Result<()> {
    let problems = problems(schema, caps);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::config(format!(
        "schema `{}` cannot be loaded to {destination}:\n  - {}\nhint: nothing was loaded and the package stays pending (its schema is fixed): load it to a destination that takes it, or discard it with `sluice pipeline {pipeline} drop-pending-packages`, change the data or hints and run again",
        schema.name,
        problems.join("\n  - ")
    )))
}

/// The data tables (not dlt's `_dlt*` tables) with at least one typed column.
fn data_tables(schema: &Schema) -> impl Iterator<Item = &Table> {
    schema
        .tables
        .values()
        .filter(|t| !t.name.starts_with("_dlt") && t.columns.values().any(|c| c.is_complete()))
}

/// Every problem of `schema` on a destination with `caps`, in schema order.
pub(super) fn problems(schema: &Schema, caps: &Capabilities) -> Vec<String> {
    let mut out = Vec::new();
    let stored = |name: &str| -> String {
        let name = if caps.has_case_sensitive_identifiers {
            name.to_string()
        } else {
            name.to_lowercase()
        };
        caps.casefold_identifier.apply(&name).into_owned()
    };
    let sensitivity = if caps.has_case_sensitive_identifiers {
        "case-sensitive"
    } else {
        "case-insensitive"
    };
    let collision = |what: &str, a: &str, b: &str, as_: &str| {
        format!(
            "{what} `{a}` and `{b}` are one identifier `{as_}` on this destination ({sensitivity}{}); rename one in the data, or use a case-insensitive naming convention (`schema.naming = \"snake_case\"`), which merges them",
            match caps.casefold_identifier {
                sluice_sdk::destination::Casefold::None => "",
                sluice_sdk::destination::Casefold::Upper => ", folds to upper case",
                sluice_sdk::destination::Casefold::Lower => ", folds to lower case",
            }
        )
    };
    let too_long = |what: &str, name: &str, max: usize| {
        format!("{what} `{name}` is longer than the destination's {max} characters")
    };
    let mut tables: HashMap<String, &str> = HashMap::new();
    for table in data_tables(schema) {
        let key = stored(&table.name);
        if let Some(other) = tables.insert(key.clone(), &table.name) {
            out.push(collision("tables", other, &table.name, &key));
        }
        if exceeds(&table.name, caps.max_identifier_length) {
            out.push(too_long("table", &table.name, caps.max_identifier_length));
        }
        let mut columns: HashMap<String, &str> = HashMap::new();
        for name in table.columns.keys() {
            let key = stored(name);
            if let Some(other) = columns.insert(key.clone(), name) {
                out.push(collision(
                    &format!("columns of table `{}`", table.name),
                    other,
                    name,
                    &key,
                ));
            }
            if exceeds(name, caps.max_column_identifier_length) {
                out.push(too_long(
                    "column",
                    &format!("{}.{name}", table.name),
                    caps.max_column_identifier_length,
                ));
            }
        }
        out.extend(merge_strategy_problem(schema, table, caps));
    }
    out
}

/// A limit of 0 is "not set" (dlt's `None`).
fn exceeds(name: &str, max: usize) -> bool {
    max > 0 && name.chars().count() > max
}

/// A root `merge` table whose strategy (its `x-merge-strategy`, else the default
/// `delete-insert`) the destination does not list. A destination that lists none takes merge
/// its own way (dlt's filesystem destination appends).
fn merge_strategy_problem(schema: &Schema, table: &Table, caps: &Capabilities) -> Option<String> {
    let supported = &caps.supported_merge_strategies;
    if table.is_nested()
        || schema.write_disposition_of(&table.name) != WriteDisposition::Merge
        || supported.is_empty()
    {
        return None;
    }
    let hinted = table.merge_strategy();
    let strategy = hinted.unwrap_or_default();
    if supported.contains(&strategy) {
        return None;
    }
    let names: Vec<&str> = supported.iter().map(|s| s.as_str()).collect();
    Some(format!(
        "`{}` merge strategy{} is not supported for table `{}`; the destination has: {}{}",
        strategy.as_str(),
        if hinted.is_none() {
            " (the default)"
        } else {
            ""
        },
        table.name,
        names.join(", "),
        if hinted.is_none() {
            "; set one of them as the resource's merge strategy"
        } else {
            ""
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::destination::Casefold;
    use sluice_sdk::schema::{Column, DataType, MergeStrategy};

    fn table(name: &str, columns: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: columns
                .iter()
                .map(|c| (c.to_string(), Column::new(*c, DataType::Text)))
                .collect(),
            ..Default::default()
        }
    }

    fn schema(tables: Vec<Table>) -> Schema {
        Schema {
            name: "s".into(),
            tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
            ..Default::default()
        }
    }

    fn caps(case_sensitive: bool, fold: Casefold) -> Capabilities {
        Capabilities {
            has_case_sensitive_identifiers: case_sensitive,
            casefold_identifier: fold,
            supported_merge_strategies: vec![MergeStrategy::DeleteInsert, MergeStrategy::Upsert],
            ..Default::default()
        }
    }

    #[test]
    fn names_that_fold_to_one_identifier_are_refused() {
        let s = schema(vec![
            table("Items", &["id", "ID", "name"]),
            table("items", &["id"]),
            table("_dlt_loads", &["load_id", "LOAD_ID"]),
        ]);
        // case-insensitive (DuckDB): `Items`/`items` and `id`/`ID` collide; dlt tables are not checked
        let p = problems(&s, &caps(false, Casefold::None));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("columns of table `Items` `id` and `ID` are one identifier `id`"));
        assert!(p[1].contains("tables `Items` and `items` are one identifier `items`"));
        // case-sensitive without folding (PostgreSQL): no collision
        assert!(problems(&s, &caps(true, Casefold::None)).is_empty());
        // case-sensitive but folding to upper case (Snowflake): collide as upper case
        let p = problems(&s, &caps(true, Casefold::Upper));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[1].contains("one identifier `ITEMS`") && p[1].contains("folds to upper case"));
    }

    #[test]
    fn identifiers_longer_than_the_limit_are_refused() {
        let s = schema(vec![
            table("abcdef", &["xyz", "wxyz"]),
            table("abc", &["é€ü"]),
        ]);
        let mut c = caps(true, Casefold::None);
        c.max_identifier_length = 5;
        c.max_column_identifier_length = 3;
        let p = problems(&s, &c);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("table `abcdef` is longer than the destination's 5"));
        assert!(p[1].contains("column `abcdef.wxyz` is longer than the destination's 3"));
        // 0 is no limit; multi-byte names are measured in characters
        c.max_identifier_length = 0;
        c.max_column_identifier_length = 0;
        assert!(problems(&s, &c).is_empty());
    }

    #[test]
    fn a_merge_strategy_the_destination_lacks_is_refused() {
        let mut root = table("events", &["id"]);
        root.write_disposition = Some(WriteDisposition::Merge);
        let mut nested = table("events__tags", &["value"]);
        nested.parent = Some("events".into());
        let c = caps(true, Casefold::None);
        assert!(problems(&schema(vec![root.clone(), nested.clone()]), &c).is_empty());
        root.extra.insert("x-merge-strategy".into(), "scd2".into());
        let p = problems(&schema(vec![root.clone(), nested.clone()]), &c);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains(
            "`scd2` merge strategy is not supported for table `events`; the destination has: delete-insert, upsert"
        ));
        // the default must be listed too, else the user is asked to choose
        let mut only_upsert = c.clone();
        only_upsert.supported_merge_strategies = vec![MergeStrategy::Upsert];
        root.extra.shift_remove("x-merge-strategy");
        let p = problems(&schema(vec![root.clone()]), &only_upsert);
        assert!(
            p[0].contains("(the default)") && p[0].contains("set one of them"),
            "{p:?}"
        );
        // none listed: the destination merges its own way
        only_upsert.supported_merge_strategies.clear();
        assert!(problems(&schema(vec![root]), &only_upsert).is_empty());
    }
}
