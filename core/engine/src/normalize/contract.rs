//! Schema contracts (spec d.4): what happens when data would add a table, a column or a
//! variant column.

use serde_json::Value;

use crate::schema::{cols, Schema};

/// A contract mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractMode {
    /// Allow the change.
    Evolve,
    /// Fail with an error naming the table, column and contract.
    Freeze,
    /// Drop the row that would make the change.
    DiscardRow,
    /// Drop the value that would make the change (for tables: all their rows).
    DiscardValue,
}

impl ContractMode {
    /// Parses a mode name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "evolve" => Self::Evolve,
            "freeze" => Self::Freeze,
            "discard_row" => Self::DiscardRow,
            "discard_value" => Self::DiscardValue,
            _ => return None,
        })
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Evolve => "evolve",
            Self::Freeze => "freeze",
            Self::DiscardRow => "discard_row",
            Self::DiscardValue => "discard_value",
        }
    }
}

/// The contract of a table: a mode for new tables, new columns and new data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contract {
    /// New tables.
    pub tables: ContractMode,
    /// New columns of existing tables.
    pub columns: ContractMode,
    /// Variant columns and type changes.
    pub data_type: ContractMode,
}

impl Default for Contract {
    fn default() -> Self {
        Self {
            tables: ContractMode::Evolve,
            columns: ContractMode::Evolve,
            data_type: ContractMode::Evolve,
        }
    }
}

impl Contract {
    /// Whether every entity evolves.
    pub fn is_evolve(&self) -> bool {
        *self == Contract::default()
    }

    /// Expands a contract setting: a single mode for all entities, or a dict with some of
    /// `tables`, `columns`, `data_type` (missing ones evolve).
    pub fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => {
                let m = ContractMode::parse(s)?;
                Some(Self {
                    tables: m,
                    columns: m,
                    data_type: m,
                })
            }
            Value::Object(m) => {
                let get = |k: &str| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .and_then(ContractMode::parse)
                        .unwrap_or(ContractMode::Evolve)
                };
                Some(Self {
                    tables: get("tables"),
                    columns: get("columns"),
                    data_type: get("data_type"),
                })
            }
            _ => None,
        }
    }
}

/// The contract in force for `table`: its own hint, else inherited from its parent chain, else
/// the schema's `settings.schema_contract`, else all-evolve. dlt's own tables always evolve.
pub fn resolve(schema: &Schema, table: &str) -> Contract {
    if table.starts_with(cols::DLT_PREFIX) {
        return Contract::default();
    }
    let mut current = Some(table.to_string());
    while let Some(name) = current {
        let Some(t) = schema.table(&name) else { break };
        if let Some(c) = t.schema_contract.as_ref().and_then(Contract::from_value) {
            return c;
        }
        current = t.parent.clone();
    }
    schema
        .doc()
        .settings
        .get("schema_contract")
        .and_then(Contract::from_value)
        .unwrap_or_default()
}
