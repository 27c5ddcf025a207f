//! The local object-storage peers (started by `scripts/peers.sh start`): creating buckets and
//! containers, and uploading test files with object_store itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use base64::Engine;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public; documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn require(port: u16, what: &str) {
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "{what} is not listening on 127.0.0.1:{port}: run `bash scripts/peers.sh install && bash scripts/peers.sh start`"
    );
}

fn unique(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

/// A raw HTTP/1.1 request on loopback; returns the status code and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    s.write_all(body).expect("send body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn put_with(store: &dyn ObjectStore, key: &str, bytes: &[u8]) {
    block_on(store.put(&object_store::path::Path::from(key), bytes.to_vec().into()))
        .unwrap_or_else(|e| panic!("upload {key}: {e}"));
}

pub struct S3;

impl S3 {
    pub fn start() -> Self {
        require(5055, "moto (S3)");
        Self
    }
    pub fn endpoint(&self) -> String {
        "http://127.0.0.1:5055".into()
    }
    pub fn create_bucket(&self, name: &str) -> String {
        let bucket = unique(name);
        let (status, text) = http(5055, "PUT", &format!("/{bucket}"), &[], b"");
        assert_eq!(status, 200, "create bucket: {text}");
        bucket
    }
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("s3");
        put_with(&store, key, bytes);
    }
}

pub struct Azure;

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

impl Azure {
    pub fn start() -> Self {
        require(10000, "Azurite (Azure Blob)");
        Self
    }
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:10000/{AZURITE_ACCOUNT}")
    }
    fn store(&self, container: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(AZURITE_ACCOUNT)
                .with_access_key(AZURITE_KEY)
                .with_container_name(container)
                .with_endpoint(self.endpoint())
                .with_allow_http(true)
                .build()
                .expect("azure"),
        )
    }
    /// Creates a container (a SharedKey-signed REST call: object_store has no such operation).
    pub fn create_container(&self, name: &str) -> String {
        let container = unique(name);
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(AZURITE_KEY)
            .expect("key");
        let sig =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let (status, text) = http(
            10000,
            "PUT",
            &format!("/{AZURITE_ACCOUNT}/{container}?restype=container"),
            &[
                ("x-ms-date", date),
                ("x-ms-version", version.into()),
                (
                    "Authorization",
                    format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
                ),
            ],
            b"",
        );
        assert_eq!(status, 201, "create container: {text}");
        container
    }
    pub fn put(&self, container: &str, key: &str, bytes: &[u8]) {
        put_with(self.store(container).as_ref(), key, bytes);
    }
}
