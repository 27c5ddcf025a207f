//! The bulk load of the PostgreSQL destination: a job's rows streamed with binary COPY, each
//! value in the wire form of its column's type as the server has it. The load file is read
//! and encoded on a thread of its own while the connection's runtime sends the previous chunk;
//! the COPY is finished only after the last chunk, so a partial file is never loaded.

use std::collections::BTreeMap;
use std::path::Path;

use sluice_sdk::destination::BatchReader;
use sluice_sdk::schema::Table;
use sluice_sdk::{CancelToken, Error, Result};
use sluice_sql::jobs::qualified;
use sqlx::postgres::PgConnection;
use sqlx::Row;

use crate::client::{bounded, PostgresConnection};
use crate::copy::{Encoder, HEADER, TRAILER};

/// Bytes of COPY data sent at a time.
const CHUNK: usize = 1 << 20;
/// Chunks encoded ahead of the one being sent.
const AHEAD: usize = 4;
/// Rows per batch read from a load file.
const BATCH_ROWS: usize = 16 * 1024;

/// Opens a parquet load file: its batches and its size in bytes.
pub(crate) fn read_parquet(path: &Path) -> Result<(BatchReader, u64)> {
    let file = std::fs::File::open(path).map_err(|e| {
        Error::io(format!(
            "cannot open the load file `{}`: {e}",
            path.display()
        ))
    })?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| {
            Error::data(format!(
                "cannot read the load file `{}`: {e}",
                path.display()
            ))
        })?;
    Ok((Box::new(reader), bytes))
}

/// What the encoding thread sends to the COPY.
enum Chunk {
    /// Rows (the first chunk starts with the header).
    Data(Vec<u8>),
    /// The last rows and the trailer: only after it is the COPY finished (committed to the
    /// transaction); a stream that ends without it is aborted.
    Last(Vec<u8>),
    /// Reading or encoding the file failed.
    Failed(Error),
}

/// Sends the chunks of `rx` as the data of COPY `statement`; finishes the COPY only after the
/// last chunk, and aborts it when the stream fails or ends early (the encoding thread died),
/// so that a partial file is never loaded.
async fn copy_in(
    con: &mut PgConnection,
    statement: &str,
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
) -> std::result::Result<u64, CopyError> {
    let mut copy = con.copy_in_raw(statement).await?;
    loop {
        match rx.recv().await {
            Some(Chunk::Data(bytes)) => {
                copy.send(bytes).await?;
            }
            Some(Chunk::Last(bytes)) => {
                copy.send(bytes).await?;
                return Ok(copy.finish().await?);
            }
            Some(Chunk::Failed(e)) => {
                let _ = copy.abort(e.message.clone()).await;
                return Err(CopyError::Data(e));
            }
            None => {
                let msg = "the thread encoding the load file stopped before its end";
                let _ = copy.abort(msg).await;
                return Err(CopyError::Data(Error::internal(format!(
                    "{msg}; nothing of the file was loaded"
                ))));
            }
        }
    }
}

/// An error of COPY: from the database, or from reading and encoding the file.
enum CopyError {
    Db(sqlx::Error),
    Data(Error),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// Runs `fut` for at most `deadline` (without one: to its end); `None` when time ran out.
/// What a failed COPY into `table` was doing: the column and row the server names in the
/// error's context (`COPY items, line 3, column name`), so that the message says which column
/// holds the value it refused.
fn copy_context(table: &str, e: &sqlx::Error) -> String {
    let place = match e {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.r#where())
            .and_then(|w| {
                let w = w.lines().find(|l| l.starts_with("COPY "))?;
                let (_, rest) = w.split_once(", line ")?;
                let (line, column) = match rest.split_once(", column ") {
                    Some((line, column)) => (line, Some(column)),
                    None => (rest.split(':').next().unwrap_or(rest), None),
                };
                let row = line.trim();
                Some(match column {
                    Some(c) => {
                        let c = c.split(':').next().unwrap_or(c).trim();
                        format!(", column `{c}` (row {row} of the load file)")
                    }
                    None => format!(" (row {row} of the load file)"),
                })
            }),
        _ => None,
    };
    format!(
        "cannot load table `{table}`{} with COPY",
        place.unwrap_or_default()
    )
}

impl PostgresConnection {
    /// The types (`pg_type.typname`) of the columns of `dataset.table` as the server has them.
    fn column_types(&mut self, dataset: &str, table: &str) -> Result<BTreeMap<String, String>> {
        let rows = self.fetch(
            "cannot read the catalog",
            "SELECT a.attname::text, t.typname::text FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[dataset, table],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect())
    }

    /// Streams `data` into `dataset.table` with binary COPY, each value in the wire form of
    /// its column's type as the server has it (a table made by hand may have `json` or
    /// `integer` where dlt makes `jsonb` or `bigint`).
    pub(crate) fn copy(
        &mut self,
        dataset: &str,
        t: &Table,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<u64> {
        let table = t.name.as_str();
        let actual = self.column_types(dataset, table)?;
        let encoder = Encoder::new(t, &data.schema())?.for_columns(dataset, &actual)?;
        let statement = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            qualified(dataset, table),
            encoder.column_list()
        );
        tracing::debug!(target: "sluice::postgres", "{statement}");
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(AHEAD);
        let producer_cancel = cancel.clone();
        let producer = std::thread::Builder::new()
            .name("sluice-pg-copy".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(CHUNK + CHUNK / 4);
                buf.extend_from_slice(HEADER);
                let step = (|| {
                    for batch in data {
                        producer_cancel.check()?;
                        let batch = batch.map_err(Error::from)?;
                        encoder.encode(&batch, &mut buf)?;
                        if buf.len() >= CHUNK {
                            let full =
                                std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + CHUNK / 4));
                            if tx.blocking_send(Chunk::Data(full)).is_err() {
                                return Ok(()); // the COPY stopped; its error is reported
                            }
                        }
                    }
                    buf.extend_from_slice(TRAILER);
                    let _ = tx.blocking_send(Chunk::Last(std::mem::take(&mut buf)));
                    Ok(())
                })();
                if let Err(e) = step {
                    let _ = tx.blocking_send(Chunk::Failed(e));
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the COPY thread: {e}")))?;
        self.connect()?;
        let deadline = self.answer_deadline();
        let Self { rt, con, .. } = self;
        let Some(con) = con.as_mut() else {
            return Err(Error::internal("no connection"));
        };
        // on a timeout the COPY (and with it the receiving end of the channel) is dropped: the
        // encoding thread's next send fails and it ends
        let result = rt.block_on(bounded(deadline, copy_in(con, &statement, rx)));
        if producer.join().is_err() {
            // it never sent its last chunk: the COPY was aborted
            return Err(Error::internal(format!(
                "the thread encoding the load file of table `{table}` panicked; nothing of the file was loaded"
            )));
        }
        match result {
            Some(Ok(rows)) => Ok(rows),
            Some(Err(CopyError::Data(e))) => Err(e),
            Some(Err(CopyError::Db(e))) => {
                let context = copy_context(table, &e);
                Err(self.fail(context, e))
            }
            None => Err(self.no_answer(format!("cannot load table `{table}` with COPY"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    /// The machine's PostgreSQL server (as the workspace tests use it).
    fn url() -> String {
        std::env::var("SLUICE_TEST_PG_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_string())
    }

    fn one_row() -> Vec<u8> {
        let mut row = Vec::new();
        row.extend_from_slice(&1i16.to_be_bytes());
        row.extend_from_slice(&8i32.to_be_bytes());
        row.extend_from_slice(&42i64.to_be_bytes());
        row
    }

    async fn count(con: &mut PgConnection) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM copy_in_t")
            .fetch_one(con)
            .await
            .expect("count")
    }

    /// A COPY is finished only after the encoding thread's last chunk: when the thread stops
    /// without it (a panic drops its sender), the COPY is aborted and nothing is loaded.
    /// PostgreSQL itself would accept the binary stream without its trailer, so finishing on
    /// a closed channel would load a partial file.
    #[test]
    fn a_copy_whose_encoder_stops_early_is_aborted_not_finished() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut con = PgConnection::connect(&url()).await.expect("connect");
            sqlx::raw_sql("CREATE TEMP TABLE copy_in_t (a bigint)")
                .execute(&mut con)
                .await
                .expect("table");
            let statement = "COPY copy_in_t (a) FROM STDIN (FORMAT binary)";
            // the thread sends rows, then dies without its last chunk
            let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
            let mut first = HEADER.to_vec();
            first.extend(one_row());
            tx.send(Chunk::Data(first.clone())).await.expect("send");
            drop(tx);
            match copy_in(&mut con, statement, rx).await {
                Err(CopyError::Data(e)) => {
                    assert!(e.to_string().contains("stopped before its end"), "{e}")
                }
                Err(CopyError::Db(e)) => panic!("expected the encoder's error, got {e}"),
                Ok(n) => panic!("a partial file was loaded ({n} rows)"),
            }
            assert_eq!(count(&mut con).await, 0);
            // the same rows with the last chunk load
            let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
            tx.send(Chunk::Data(first)).await.expect("send");
            tx.send(Chunk::Last(TRAILER.to_vec())).await.expect("send");
            drop(tx);
            let n = copy_in(&mut con, statement, rx)
                .await
                .unwrap_or_else(|_| panic!("the complete stream loads"));
            assert_eq!(n, 1);
            assert_eq!(count(&mut con).await, 1);
        });
    }
}
