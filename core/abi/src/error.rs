//! Errors that cross the boundary.

use abi_stable::std_types::{RResult, RString};
use abi_stable::StableAbi;

/// An error code: an open set (a newtype over `u32`, not an exhaustive enum), so minor versions
/// can add codes. Unknown codes must be treated like [`ErrorCode::INTERNAL`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// A bug or an unclassified failure.
    pub const INTERNAL: Self = Self(1);
    /// Invalid or missing configuration.
    pub const CONFIG: Self = Self(2);
    /// Authentication or authorization failed.
    pub const AUTH: Self = Self(3);
    /// A network failure (connection refused, timeout, reset).
    pub const NETWORK: Self = Self(4);
    /// Something named does not exist (resource, table, file, bucket).
    pub const NOT_FOUND: Self = Self(5);
    /// The plugin does not implement the requested operation.
    pub const UNSUPPORTED: Self = Self(6);
    /// A schema problem: incompatible types, contract violations.
    pub const SCHEMA: Self = Self(7);
    /// The operation was cancelled by the host.
    pub const CANCELLED: Self = Self(8);
    /// The plugin panicked; it is now poisoned.
    pub const PANIC: Self = Self(9);
    /// The plugin panicked earlier and refuses further calls.
    pub const POISONED: Self = Self(10);
    /// Malformed input data (bad JSON, a truncated file, a csv row with too many fields).
    pub const DATA: Self = Self(11);
    /// An I/O error on local or remote storage.
    pub const IO: Self = Self(12);
    /// The destination rejected the operation (constraint, type, SQL error).
    pub const DESTINATION: Self = Self(13);

    /// A short lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::INTERNAL => "internal",
            Self::CONFIG => "config",
            Self::AUTH => "auth",
            Self::NETWORK => "network",
            Self::NOT_FOUND => "not found",
            Self::UNSUPPORTED => "unsupported",
            Self::SCHEMA => "schema",
            Self::CANCELLED => "cancelled",
            Self::PANIC => "panic",
            Self::POISONED => "poisoned",
            Self::DATA => "data",
            Self::IO => "io",
            Self::DESTINATION => "destination",
            _ => "unknown",
        }
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// A structured error returned by a plugin function.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// Whether retrying the same call may succeed (dlt's transient vs terminal distinction).
    pub retryable: bool,
    /// The user-facing message (never contains secrets).
    pub message: RString,
    /// Extra structured details as a JSON object (`{}` when none): sqlstate, HTTP status, file,
    /// line...
    pub details_json: RString,
}

impl FfiError {
    /// A new non-retryable error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            retryable: false,
            message: RString::from(message.into()),
            details_json: RString::from("{}"),
        }
    }
}

/// The result type of every fallible plugin function.
pub type FfiResult<T> = RResult<T, FfiError>;
