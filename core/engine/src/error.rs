//! Engine errors. Each message names the thing (table, column, file, line) and what to do.

use std::path::PathBuf;

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A schema problem (invalid settings, a value that cannot be stored, a bad hint).
    #[error("{0}")]
    Schema(String),
    /// A schema contract forbade a change (dlt's `DataValidationError`).
    #[error(
        "in schema `{schema}`, table `{table}`{}: the `{entity}` contract is `{mode}` and {reason}",
        .column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default()
    )]
    Contract {
        /// Schema name.
        schema: String,
        /// Table name.
        table: String,
        /// Column name, for column and data type contracts.
        column: Option<String>,
        /// `tables`, `columns` or `data_type`.
        entity: String,
        /// The contract mode (`freeze`).
        mode: String,
        /// What the data tried to do.
        reason: String,
    },
    /// Malformed input data.
    #[error("{0}")]
    Data(String),
    /// An I/O failure on a file.
    #[error("`{}`: {message}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// Invalid configuration.
    #[error("{0}")]
    Config(String),
    /// A bug or unclassified failure.
    #[error("{0}")]
    Internal(String),
    /// An error from a plugin.
    #[error("{0}")]
    Plugin(#[from] sluice_sdk::Error),
    /// Another process holds the pipeline's working directory.
    #[error("{0}")]
    Locked(String),
    /// A pipeline step failed.
    #[error("{0}")]
    Step(Box<crate::pipeline::StepError>),
}

impl Error {
    /// A schema error.
    pub fn schema(message: impl Into<String>) -> Self {
        Error::Schema(message.into())
    }
    /// A data error.
    pub fn data(message: impl Into<String>) -> Self {
        Error::Data(message.into())
    }
    /// An internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }
    /// Whether retrying may succeed (a transient destination or network failure).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Plugin(e) => e.retryable,
            Error::Step(s) => s.source.is_retryable(),
            _ => false,
        }
    }

    /// The failed pipeline step, if this is a step error.
    pub fn step(&self) -> Option<crate::pipeline::Step> {
        match self {
            Error::Step(s) => Some(s.step),
            _ => None,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        let path = path.into();
        let mut message = err.to_string();
        // a full disk or quota (ENOSPC, EDQUOT), also when wrapped by the parquet writer
        if message.contains("(os error 28)") || message.contains("(os error 122)") {
            let folder = path.parent().unwrap_or(&path);
            message.push_str(&format!(
                "\nhint: the disk holding `{}` is full; free space there (or point SLUICE_DATA_DIR / `pipelines_dir` at another disk) and run again: nothing half-written was committed, and the next run loads everything once",
                folder.display()
            ));
        }
        Error::Io { path, message }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Internal(format!("parquet: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}
