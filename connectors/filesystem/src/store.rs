//! `bucket_url` → an object store, listing with a glob, and readers over the listed files.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use globset::{GlobBuilder, GlobMatcher};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Map, Value};
use sluice_sdk::{Error, Result};

use crate::config::ConfigError;

/// Where the files are.
pub struct Store {
    /// the bucket URL as configured (for messages and `file_url`s)
    pub url: String,
    base: String,
    inner: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    local_root: Option<PathBuf>,
}

/// One listed file, as dlt's file items describe it.
#[derive(Debug, Clone)]
pub struct FileItem {
    /// path relative to the bucket URL (`relative_path` and `file_name` in dlt)
    pub file_name: String,
    /// full URL
    pub file_url: String,
    /// size in bytes
    pub size: u64,
    /// modification date (UTC)
    pub modified: DateTime<Utc>,
    location: ObjPath,
}

impl FileItem {
    /// dlt's file item document.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("file_url".into(), self.file_url.clone().into());
        m.insert("file_name".into(), self.file_name.clone().into());
        m.insert("relative_path".into(), self.file_name.clone().into());
        m.insert("mime_type".into(), mime_type(&self.file_name).into());
        m.insert(
            "modification_date".into(),
            self.modified
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
                .into(),
        );
        m.insert("size_in_bytes".into(), self.size.into());
        Value::Object(m)
    }
}

fn mime_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
    if lower.ends_with(".csv") {
        "text/csv"
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        "application/jsonl"
    } else if lower.ends_with(".json") {
        "application/json"
    } else if lower.ends_with(".parquet") {
        "application/vnd.apache.parquet"
    } else {
        "application/octet-stream"
    }
}

/// A value from the credentials: secrets first, then the non-secret config.
fn cred<'a>(
    secrets: &'a Map<String, Value>,
    config: &'a Map<String, Value>,
    key: &str,
) -> Option<&'a str> {
    secrets
        .get(key)
        .or_else(|| config.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn flag(config: &Map<String, Value>, secrets: &Map<String, Value>, key: &str) -> bool {
    config
        .get(key)
        .or_else(|| secrets.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn store_error(url: &str, e: object_store::Error) -> Error {
    // object_store's messages carry no secrets (keys are never formatted into them)
    match e {
        object_store::Error::NotFound { .. } => Error::not_found(format!(
            "bucket_url `{url}`: not found ({e})\nhint: check the bucket/container name and that it exists"
        )),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            Error::auth(format!(
                "bucket_url `{url}`: access denied ({e})\nhint: check the credentials in secrets (sources.filesystem.credentials)"
            ))
        }
        other => {
            let text = other.to_string();
            let status = |code: &str| text.contains(&format!("status code: {code}"));
            if status("404") || text.contains("NoSuchBucket") || text.contains("ContainerNotFound") {
                Error::not_found(format!(
                    "bucket_url `{url}`: the bucket or container does not exist ({text})"
                ))
            } else if status("403")
                || status("401")
                || text.contains("AuthenticationFailed")
                || text.contains("InvalidAccessKeyId")
                || text.contains("SignatureDoesNotMatch")
            {
                Error::auth(format!(
                    "bucket_url `{url}`: the credentials were refused ({text})\nhint: check the credentials in secrets (sources.filesystem.credentials)"
                ))
            } else {
                Error::network(format!("bucket_url `{url}`: {text}"))
            }
        }
    }
}

impl Store {
    /// Opens the store for `bucket_url` with `credentials` (config and secrets parts).
    pub fn open(
        bucket_url: &str,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<Self> {
        let url = bucket_url.trim().to_string();
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r.to_string()),
            None => ("file".to_string(), url.clone()),
        };
        match scheme.as_str() {
            "file" => {
                let path = PathBuf::from(if rest.is_empty() { "." } else { &rest });
                let root = std::path::absolute(&path).map_err(|e| {
                    Error::config(format!("bucket_url `{url}`: not a usable path: {e}"))
                })?;
                if !root.is_dir() {
                    return Err(Error::not_found(format!(
                        "bucket_url `{url}`: the directory `{}` does not exist\nhint: bucket_url is a folder; put the file name pattern in file_glob",
                        root.display()
                    )));
                }
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| store_error(&url, e))?;
                Ok(Self {
                    base: format!("file://{}", root.display()),
                    url,
                    inner: Arc::new(fs),
                    prefix: ObjPath::default(),
                    local_root: Some(root),
                })
            }
            "s3" | "s3a" => {
                let (bucket, prefix) = split_bucket(&rest);
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(cred(secrets, config, "region_name").unwrap_or("us-east-1"));
                if let Some(k) = cred(secrets, config, "aws_access_key_id") {
                    b = b.with_access_key_id(k);
                }
                if let Some(k) = cred(secrets, config, "aws_secret_access_key") {
                    b = b.with_secret_access_key(k);
                }
                if let Some(k) = cred(secrets, config, "aws_session_token") {
                    b = b.with_token(k);
                }
                if let Some(e) = cred(secrets, config, "endpoint_url") {
                    let keyed = cred(secrets, config, "aws_secret_access_key").is_some();
                    warn_if_plain_http(&url, e, keyed);
                    b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                }
                if flag(config, secrets, "anonymous") {
                    b = b.with_skip_signature(true);
                }
                let s = b.build().map_err(|e| store_error(&url, e))?;
                Ok(Self::remote(url.clone(), format!("{scheme}://{bucket}"), Arc::new(s), prefix))
            }
            "gs" | "gcs" => {
                let (bucket, prefix) = split_bucket(&rest);
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::new().with_bucket_name(bucket);
                let endpoint = cred(secrets, config, "endpoint_url");
                if let Some(json) = secrets.get("service_account_json").and_then(Value::as_str) {
                    b = b.with_service_account_key(json);
                } else if let (Some(email), Some(key)) = (
                    cred(secrets, config, "client_email"),
                    cred(secrets, config, "private_key"),
                ) {
                    let sa = serde_json::json!({
                        "client_email": email,
                        "private_key": key,
                        "private_key_id": cred(secrets, config, "private_key_id").unwrap_or(""),
                        "project_id": cred(secrets, config, "project_id").unwrap_or(""),
                    });
                    b = b.with_service_account_key(sa.to_string());
                } else if endpoint.is_some() || flag(config, secrets, "anonymous") {
                    // an emulator or a public bucket: no OAuth
                    let sa = serde_json::json!({
                        "client_email": "", "private_key": "", "private_key_id": "",
                        "disable_oauth": true,
                    });
                    b = b.with_service_account_key(sa.to_string());
                }
                if let Some(e) = endpoint {
                    let keyed = secrets.get("service_account_json").is_some()
                        || cred(secrets, config, "private_key").is_some();
                    warn_if_plain_http(&url, e, keyed);
                    b = b.with_base_url(e);
                }
                let s = b.build().map_err(|e| store_error(&url, e))?;
                Ok(Self::remote(url.clone(), format!("gs://{bucket}"), Arc::new(s), prefix))
            }
            "az" | "azure" | "abfs" | "abfss" => {
                // az://container/prefix or abfss://container@account.dfs.core.windows.net/prefix
                let (head, prefix) = split_bucket(&rest);
                let (container, host_account) = match head.split_once('@') {
                    Some((c, host)) => (c, host.split('.').next()),
                    None => (head, None),
                };
                let mut b = object_store::azure::MicrosoftAzureBuilder::new().with_container_name(container);
                if let Some(a) = cred(secrets, config, "azure_storage_account_name").or(host_account) {
                    b = b.with_account(a);
                }
                if let Some(k) = cred(secrets, config, "azure_storage_account_key") {
                    b = b.with_access_key(k);
                }
                if let Some(sas) = cred(secrets, config, "azure_storage_sas_token") {
                    let pairs: Vec<(String, String)> = sas
                        .trim_start_matches('?')
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    b = b.with_sas_authorization(pairs);
                }
                if flag(config, secrets, "use_emulator") {
                    b = b.with_use_emulator(true);
                }
                if let Some(e) = cred(secrets, config, "endpoint_url") {
                    let keyed = cred(secrets, config, "azure_storage_account_key").is_some()
                        || cred(secrets, config, "azure_storage_sas_token").is_some();
                    warn_if_plain_http(&url, e, keyed);
                    b = b.with_endpoint(e.to_string()).with_allow_http(e.starts_with("http://"));
                }
                if flag(config, secrets, "anonymous") {
                    b = b.with_skip_signature(true);
                }
                let s = b.build().map_err(|e| store_error(&url, e))?;
                Ok(Self::remote(url.clone(), format!("az://{container}"), Arc::new(s), prefix))
            }
            other => Err(Error::config(format!(
                "bucket_url `{url}`: unsupported scheme `{other}://`\nhint: use a local path, file://, s3://, gs://, az:// or abfss://"
            ))),
        }
    }

    fn remote(url: String, base: String, inner: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            url,
            base,
            inner,
            prefix: ObjPath::from(prefix),
            local_root: None,
        }
    }

    /// The files under the bucket URL that match `glob`, sorted by name.
    pub async fn list(&self, glob: &GlobMatcher) -> Result<Vec<FileItem>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let mut stream = self.inner.list(prefix);
        let mut files = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| store_error(&self.url, e))?;
            let full = meta.location.as_ref();
            let rel = match prefix {
                Some(p) => full
                    .strip_prefix(p.as_ref())
                    .map(|r| r.trim_start_matches('/'))
                    .unwrap_or(full),
                None => full,
            };
            if !glob.is_match(rel) {
                continue;
            }
            let file_url = match &self.local_root {
                Some(_) => format!("{}/{}", self.base.trim_end_matches('/'), rel),
                None => format!("{}/{}", self.base, full),
            };
            files.push(FileItem {
                file_name: rel.to_string(),
                file_url,
                size: meta.size,
                modified: meta.last_modified,
                location: meta.location.clone(),
            });
        }
        files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(files)
    }

    /// A blocking reader over the whole file (call from a blocking thread).
    pub fn open_read(
        &self,
        file: &FileItem,
        handle: &tokio::runtime::Handle,
    ) -> Result<Box<dyn Read + Send>> {
        if let Some(root) = &self.local_root {
            let path = root.join(&file.file_name);
            let f = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("cannot open `{}`: {e}", file.file_url)))?;
            return Ok(Box::new(f));
        }
        let got = handle
            .block_on(self.inner.get(&file.location))
            .map_err(|e| store_error(&file.file_url, e))?;
        let stream = got.into_stream().map_err(std::io::Error::other);
        let reader = tokio_util::io::StreamReader::new(stream);
        Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
            reader,
            handle.clone(),
        )))
    }

    /// The local path of a file, when the store is a local directory.
    pub fn local_path(&self, file: &FileItem) -> Option<PathBuf> {
        self.local_root.as_ref().map(|r| r.join(&file.file_name))
    }

    /// An async parquet reader over a remote file. (`ParquetObjectReader` is deprecated in
    /// parquet 60 in favour of a hand-written `AsyncFileReader`; it still works and is what the
    /// arrow-rs examples used until then.)
    #[allow(deprecated)]
    pub fn parquet_reader(
        &self,
        file: &FileItem,
    ) -> parquet::arrow::async_reader::ParquetObjectReader {
        parquet::arrow::async_reader::ParquetObjectReader::new(
            self.inner.clone(),
            file.location.clone(),
        )
        .with_file_size(file.size)
    }
}

fn split_bucket(rest: &str) -> (&str, &str) {
    match rest.split_once('/') {
        Some((b, p)) => (b, p.trim_matches('/')),
        None => (rest, ""),
    }
}

/// Compiles `file_glob` (`*` within a folder, `**` across folders).
pub fn compile_glob(glob: &str) -> Result<GlobMatcher, ConfigError> {
    let g = glob.trim_start_matches("./").trim_start_matches('/');
    GlobBuilder::new(if g.is_empty() { "*" } else { g })
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|error| ConfigError::InvalidGlob {
            glob: glob.to_string(),
            error,
        })
}

#[cfg(test)]
impl FileItem {
    pub(crate) fn for_tests(name: &str, modified: DateTime<Utc>) -> Self {
        Self {
            file_name: name.into(),
            file_url: format!("file:///t/{name}"),
            size: 0,
            modified,
            location: ObjPath::from(name),
        }
    }
}

/// Warns when credentials go to an `http://` endpoint off this machine: they cross the network
/// unencrypted (the local emulators and test peers on 127.0.0.1 are fine). Returns whether it
/// warned. The message names the host only.
fn warn_if_plain_http(bucket_url: &str, endpoint: &str, has_credentials: bool) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if loopback || !has_credentials {
        return false;
    }
    tracing::warn!(
        target: "sluice::filesystem",
        "bucket `{bucket_url}`: credentials are sent to http://{host} unencrypted; use an https:// endpoint_url"
    );
    true
}

#[cfg(test)]
mod http_warning_tests {
    use super::warn_if_plain_http;

    #[test]
    fn credentials_over_plain_http_off_this_machine_are_warned_about() {
        assert!(warn_if_plain_http(
            "s3://b",
            "http://minio.internal:9000",
            true
        ));
        assert!(warn_if_plain_http("s3://b", "http://10.1.2.3/", true));
        assert!(!warn_if_plain_http("s3://b", "http://127.0.0.1:5000", true));
        assert!(!warn_if_plain_http("s3://b", "http://localhost:5000", true));
        assert!(!warn_if_plain_http("s3://b", "http://[::1]:5000", true));
        assert!(!warn_if_plain_http(
            "s3://b",
            "https://minio.internal",
            true
        ));
        assert!(!warn_if_plain_http(
            "s3://b",
            "http://minio.internal",
            false
        ));
    }
}
