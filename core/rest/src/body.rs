//! Reading a response body under a byte cap, on the wire and after gzip decoding.
//!
//! The client asks for gzip itself and decodes here (reqwest's own decoding is off), so that
//! both sizes are counted while the body streams in: a `Content-Length` above the cap is
//! refused before one byte is read, a longer body is refused as soon as it passes the cap, and
//! a gzip bomb is refused when its *decoded* size passes the cap. Nothing is buffered beyond the
//! cap. The normal path is one `Vec` grown chunk by chunk, as `Response::text` does.

use std::io::Write;

use sluice_sdk::Error;

/// How reading a body failed.
pub(crate) enum BodyError {
    /// The connection failed or timed out mid-body: worth another attempt.
    Transient(reqwest::Error),
    /// The body is refused (too large, corrupt gzip): another attempt gets the same.
    Fatal(Error),
}

/// A `Vec` that refuses to grow past `cap` bytes.
struct Capped {
    buf: Vec<u8>,
    cap: u64,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.cap {
            self.over = true;
            return Err(std::io::Error::other("over the cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the response is gzip-encoded (`Content-Encoding: gzip` / `x-gzip`).
fn is_gzip(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip")
        })
}

/// The refusal of a body over the cap. `what` names the request (`resource `x`: GET <url>`,
/// the URL redacted).
pub(crate) fn too_large(what: &str, cap: u64, how: &str) -> Error {
    Error::data(format!(
        "{what}: the response body is larger than max_response_bytes ({cap} bytes){how}\nhint: raise `max_response_bytes` in the source config if this API really sends bodies this large"
    ))
}

/// The whole body of `resp`, decoded from gzip when so encoded, at most `cap` bytes on the wire
/// and at most `cap` bytes decoded.
pub(crate) async fn read_body(
    resp: &mut reqwest::Response,
    cap: u64,
    what: &(dyn Fn() -> String + Sync),
) -> Result<Vec<u8>, BodyError> {
    if let Some(len) = resp.content_length() {
        if len > cap {
            return Err(BodyError::Fatal(too_large(
                &what(),
                cap,
                &format!(" (Content-Length {len}); not read"),
            )));
        }
    }
    let hint = resp.content_length().unwrap_or(0).min(cap).min(64 << 20) as usize;
    let mut wire: u64 = 0;
    if is_gzip(resp) {
        let sink = Capped {
            buf: Vec::with_capacity(hint.saturating_mul(4).min(cap.min(64 << 20) as usize)),
            cap,
            over: false,
        };
        let mut dec = flate2::write::MultiGzDecoder::new(sink);
        let corrupt = |e: std::io::Error| {
            BodyError::Fatal(Error::data(format!(
                "{}: the response is not valid gzip ({e})",
                what()
            )))
        };
        while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transient)? {
            wire += chunk.len() as u64;
            if wire > cap {
                return Err(BodyError::Fatal(too_large(&what(), cap, " on the wire")));
            }
            if let Err(e) = dec.write_all(&chunk) {
                return Err(if dec.get_ref().over {
                    BodyError::Fatal(too_large(
                        &what(),
                        cap,
                        &format!(" once decoded from gzip (after {wire} bytes on the wire)"),
                    ))
                } else {
                    corrupt(e)
                });
            }
        }
        if wire == 0 {
            // an empty body labelled gzip (a 204, a HEAD) has nothing to decode
            return Ok(Vec::new());
        }
        match dec.finish() {
            Ok(sink) => Ok(sink.buf),
            Err(e) => Err(corrupt(e)),
        }
    } else {
        let mut buf: Vec<u8> = Vec::with_capacity(hint);
        while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transient)? {
            wire += chunk.len() as u64;
            if wire > cap {
                return Err(BodyError::Fatal(too_large(&what(), cap, "")));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }
}

/// Bytes as text: UTF-8, invalid sequences replaced (as `Response::text` without a charset).
pub(crate) fn into_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capped_sink_refuses_past_its_cap() {
        let mut c = Capped {
            buf: Vec::new(),
            cap: 4,
            over: false,
        };
        assert!(c.write_all(b"abcd").is_ok());
        assert!(c.write_all(b"e").is_err());
        assert!(c.over);
        assert_eq!(c.buf, b"abcd");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        // 64 MiB of zeros in ~64 KiB of gzip: refused after 1 MiB decoded
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            enc.write_all(&zeros).expect("gz");
        }
        let gz = enc.finish().expect("gz");
        assert!(gz.len() < 1 << 20, "{}", gz.len());
        let mut dec = flate2::write::MultiGzDecoder::new(Capped {
            buf: Vec::new(),
            cap: 1 << 20,
            over: false,
        });
        let r = gz.chunks(8192).try_for_each(|c| dec.write_all(c));
        assert!(r.is_err());
        assert!(dec.get_ref().over);
        assert!(dec.get_ref().buf.len() <= 1 << 20);
    }
}
