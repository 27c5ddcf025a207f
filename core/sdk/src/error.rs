//! The error type plugin code returns; converted once to [`FfiError`] at the boundary.

use sluice_abi::{ErrorCode, FfiError, RString};

/// An error from a plugin (or from the host calling one): a code, a message for the user,
/// whether a retry may help, and structured details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// Whether the same call may succeed when retried.
    pub retryable: bool,
    /// Lowercase, names the offending thing in backticks, then what to do.
    pub message: String,
    /// Structured details (sqlstate, HTTP status, file, line); `Null` when none.
    pub details: serde_json::Value,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with `code` and `message`, not retryable.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            retryable: false,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// Marks the error as retryable (transient).
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Prefixes the message with context: `"{context}: {message}"`.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// A bug or unclassified failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL, message)
    }
    /// Bad or missing configuration.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::CONFIG, message)
    }
    /// Authentication failed.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AUTH, message)
    }
    /// A network failure (retryable).
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NETWORK, message).retryable()
    }
    /// Something named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NOT_FOUND, message)
    }
    /// The operation is not implemented by this plugin.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UNSUPPORTED, message)
    }
    /// A schema problem.
    pub fn schema(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::SCHEMA, message)
    }
    /// Malformed input data.
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DATA, message)
    }
    /// An I/O failure.
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::IO, message)
    }
    /// The destination rejected the operation.
    pub fn destination(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DESTINATION, message)
    }
    /// The host cancelled the operation.
    pub fn cancelled() -> Self {
        Self::new(ErrorCode::CANCELLED, "cancelled by the host")
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.code == ErrorCode::CANCELLED
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let details = if e.details.is_null() {
            "{}".to_string()
        } else {
            e.details.to_string()
        };
        FfiError {
            code: e.code,
            retryable: e.retryable,
            message: RString::from(e.message),
            details_json: RString::from(details),
        }
    }
}

impl From<FfiError> for Error {
    fn from(e: FfiError) -> Self {
        let details = serde_json::from_str(e.details_json.as_str()).unwrap_or_default();
        let details = match details {
            serde_json::Value::Object(ref m) if m.is_empty() => serde_json::Value::Null,
            other => other,
        };
        Error {
            code: e.code,
            retryable: e.retryable,
            message: e.message.into_string(),
            details,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("invalid JSON at the plugin boundary: {e}"))
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        match e {
            arrow_schema::ArrowError::ExternalError(inner) => match inner.downcast::<Error>() {
                Ok(err) => *err,
                Err(other) => Error::internal(other.to_string()),
            },
            other => Error::internal(format!("arrow: {other}")),
        }
    }
}

impl From<Error> for arrow_schema::ArrowError {
    fn from(e: Error) -> Self {
        arrow_schema::ArrowError::ExternalError(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_ffi() {
        let e = Error::network("`api.example.com` refused the connection")
            .with_details(serde_json::json!({"status": 503}));
        let back = Error::from(FfiError::from(e.clone()));
        assert_eq!(back.code, ErrorCode::NETWORK);
        assert!(back.retryable);
        assert_eq!(back.message, e.message);
        assert_eq!(back.details["status"], 503);
    }

    #[test]
    fn survives_arrow_errors() {
        let e = Error::data("bad row");
        let arrow: arrow_schema::ArrowError = e.into();
        let back = Error::from(arrow);
        assert_eq!(back.code, ErrorCode::DATA);
    }
}
