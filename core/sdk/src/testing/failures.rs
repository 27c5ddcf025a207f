//! Failed and retried packages: a package whose job fails leaves nothing (its data, its
//! truncations, its `_dlt_loads` row) and loads exactly once when it is retried; a completed
//! package is recognized and not loaded again. sluice's destinations commit a package in one
//! transaction, so this holds for `replace` too (dlt's truncate-and-insert commits the
//! truncation first, dlt issue #3025: a deliberate difference, docs/architecture.md).

use serde_json::json;

use super::fail;
use super::kit::{
    self, attempt, load, nested, root, schema, state_row, store_schema, Ctx, Package, PIPELINE,
};
use crate::schema::{Column, DataType, Schema, WriteDisposition};
use crate::{DestinationClient, ErrorCode, Result};

const L1: &str = "1700000001.000001";
const L2: &str = "1700000002.000001";
const L3: &str = "1700000003.000001";

fn two_tables(check: &str) -> Schema {
    schema(
        check,
        1,
        vec![
            root(
                "items",
                WriteDisposition::Append,
                &[("id", DataType::Bigint)],
            ),
            root(
                "refs",
                WriteDisposition::Replace,
                &[("name", DataType::Text)],
            ),
        ],
    )
}

/// The first package, then a second whose `refs` job stream fails after one batch.
fn load_then_fail(ctx: &Ctx<'_>, s: &Schema) -> Result<(Box<dyn DestinationClient>, Package)> {
    let mut client = ctx.client()?;
    let p1 = Package::new(
        s,
        L1,
        &[
            ("items", vec![json!({"id": 1})]),
            ("refs", vec![json!({"name": "r1"})]),
        ],
    )?;
    load(client.as_mut(), s, &p1)?;
    let mut p2 = Package::new(
        s,
        L2,
        &[
            ("items", vec![json!({"id": 10}), json!({"id": 11})]),
            ("refs", vec![json!({"name": "r2"})]),
        ],
    )?;
    p2.jobs[1].fail_after = Some(1);
    p2.state = Some(state_row(2, L2, PIPELINE));
    store_schema(client.as_mut(), s)?;
    if client.is_load_completed(L2)? {
        return Err(fail(
            "is_load_completed is true before the package was loaded",
        ));
    }
    match attempt(client.as_mut(), s, &p2) {
        Ok(_) => {
            return Err(fail(
                "a package whose job stream failed was completed: write_table must return the stream's error",
            ))
        }
        Err(e) if e.message.contains("write_table") || e.message.contains("load_file") => {}
        Err(e) => {
            return Err(fail(format!(
                "the stream's error should fail write_table, got: {}",
                e.message
            )))
        }
    }
    if client.is_load_completed(L2)? {
        return Err(fail("a failed package is completed"));
    }
    p2.jobs[1].fail_after = None;
    Ok((client, p2))
}

fn expect_first_package_only(
    ctx: &Ctx<'_>,
    client: &mut dyn DestinationClient,
    who: &str,
) -> Result<()> {
    ctx.expect_rows(
        client,
        &format!("{who}: nothing of a failed package (append table)"),
        &format!("SELECT id FROM {}", ctx.table("items")),
        &["1"],
    )?;
    ctx.expect_rows(
        client,
        &format!("{who}: a failed replace keeps the rows it would have replaced"),
        &format!("SELECT name FROM {}", ctx.table("refs")),
        &["r1"],
    )?;
    ctx.expect_rows(
        client,
        &format!("{who}: no _dlt_loads row of a failed package"),
        &format!("SELECT load_id FROM {}", ctx.table("_dlt_loads")),
        &[L1],
    )
}

fn expect_both_once(ctx: &Ctx<'_>, client: &mut dyn DestinationClient) -> Result<()> {
    ctx.expect_rows(
        client,
        "the retried package loaded exactly once",
        &format!("SELECT id, _dlt_load_id FROM {}", ctx.table("items")),
        &[
            "1 | 1700000001.000001",
            "10 | 1700000002.000001",
            "11 | 1700000002.000001",
        ],
    )?;
    ctx.expect_rows(
        client,
        "the retried replace",
        &format!("SELECT name FROM {}", ctx.table("refs")),
        &["r2"],
    )?;
    ctx.expect_rows(
        client,
        "one _dlt_loads row per package",
        &format!("SELECT load_id FROM {}", ctx.table("_dlt_loads")),
        &[L1, L2],
    )?;
    let state = client
        .get_stored_state(PIPELINE)?
        .ok_or_else(|| fail("the retried package's state was not stored"))?;
    if state.load_id != L2 {
        return Err(fail(format!(
            "the stored state is of package {}, expected the retried {L2}",
            state.load_id
        )));
    }
    Ok(())
}

/// A job stream that fails midway: the package is not completed; the engine retries it on
/// the same client (`is_load_completed`, then `start_load` again) and it loads exactly once.
pub fn reader_error(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = two_tables("failure_reader_error");
    let (client, p2) = load_then_fail(ctx, &s)?;
    let mut client = client;
    attempt(client.as_mut(), &s, &p2).map_err(|e| {
        fail(format!(
            "the retry on the same client failed: {}",
            e.message
        ))
    })?;
    if !client.is_load_completed(L2)? {
        return Err(fail("the retried package is not completed"));
    }
    drop(client);
    let mut client = ctx.client()?;
    expect_both_once(ctx, client.as_mut())
}

/// After a failed job the client has ended the attempt: what it reads (as the engine may ask
/// `is_load_completed` or query before a retry) is what was committed before.
pub fn failed_attempt_is_ended(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = two_tables("failure_ended");
    let (mut client, _) = load_then_fail(ctx, &s)?;
    expect_first_package_only(ctx, client.as_mut(), "the same client after the failure")
}

/// A value the table refuses (NULL in a NOT NULL column) fails the package for good (a
/// non-retryable `destination`, `data` or `schema` error, which the engine reports as a failed
/// package) and leaves nothing; the next package loads.
pub fn not_null(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut strict = root(
        "strict",
        WriteDisposition::Append,
        &[("id", DataType::Bigint), ("name", DataType::Text)],
    );
    kit::hint(&mut strict, "id", |c: &mut Column| c.nullable = Some(false));
    let s = schema("failure_not_null", 1, vec![strict]);
    let mut client = ctx.client()?;
    load(
        client.as_mut(),
        &s,
        &Package::new(&s, L1, &[("strict", vec![json!({"id": 1, "name": "a"})])])?,
    )?;
    let bad = Package::new(
        &s,
        L2,
        &[(
            "strict",
            vec![
                json!({"id": 2, "name": "b"}),
                json!({"id": null, "name": "bad"}),
            ],
        )],
    )?;
    store_schema(client.as_mut(), &s)?;
    client.is_load_completed(L2)?;
    match attempt(client.as_mut(), &s, &bad) {
        Ok(_) => return Err(fail("NULL was loaded into a NOT NULL column")),
        Err(e) => {
            if e.retryable
                || ![ErrorCode::DESTINATION, ErrorCode::DATA, ErrorCode::SCHEMA].contains(&e.code)
            {
                return Err(fail(format!(
                    "a NOT NULL violation must be a non-retryable destination, data or schema error (the engine then fails the package); got code {:?}, retryable {}: {}",
                    e.code, e.retryable, e.message
                )));
            }
        }
    }
    if client.is_load_completed(L2)? {
        return Err(fail("a refused package is completed"));
    }
    drop(client);
    // the engine moves the package aside; the next run extracts the data again
    let mut client = ctx.client()?;
    load(
        client.as_mut(),
        &s,
        &Package::new(&s, L3, &[("strict", vec![json!({"id": 3, "name": "c"})])])?,
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "nothing of the refused package",
        &format!("SELECT id, name, _dlt_load_id FROM {}", ctx.table("strict")),
        &["1 | a | 1700000001.000001", "3 | c | 1700000003.000001"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "_dlt_loads",
        &format!("SELECT load_id FROM {}", ctx.table("_dlt_loads")),
        &[L1, L3],
    )
}

/// An attempt abandoned before `complete_load` (a killed run): a new client sees nothing of
/// it, and the package replayed from the start loads exactly once.
pub fn abandoned_attempt(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = two_tables("failure_abandoned");
    let mut client = ctx.client()?;
    load(
        client.as_mut(),
        &s,
        &Package::new(
            &s,
            L1,
            &[
                ("items", vec![json!({"id": 1})]),
                ("refs", vec![json!({"name": "r1"})]),
            ],
        )?,
    )?;
    let mut p2 = Package::new(
        &s,
        L2,
        &[
            ("items", vec![json!({"id": 10}), json!({"id": 11})]),
            ("refs", vec![json!({"name": "r2"})]),
        ],
    )?;
    p2.state = Some(state_row(2, L2, PIPELINE));
    store_schema(client.as_mut(), &s)?;
    client.is_load_completed(L2)?;
    kit::start_and_write(client.as_mut(), &s, &p2)?;
    drop(client);
    let mut client = ctx.client()?;
    expect_first_package_only(
        ctx,
        client.as_mut(),
        "a new client after an abandoned attempt",
    )?;
    load(client.as_mut(), &s, &p2)?;
    drop(client);
    let mut client = ctx.client()?;
    expect_both_once(ctx, client.as_mut())
}

/// A completed package is recognized by a new client (the engine then skips it): its schema
/// stored again changes nothing.
pub fn completed_once(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = two_tables("failure_completed_once");
    let mut client = ctx.client()?;
    let mut p1 = Package::new(&s, L1, &[("items", vec![json!({"id": 1})])])?;
    p1.state = Some(state_row(1, L1, PIPELINE));
    load(client.as_mut(), &s, &p1)?;
    drop(client);
    for _ in 0..2 {
        let mut client = ctx.client()?;
        store_schema(client.as_mut(), &s)?;
        if !client.is_load_completed(L1)? {
            return Err(fail(
                "a new client does not see the completed package: the engine would load it again",
            ));
        }
    }
    if ctx.destination.capabilities().supports_query {
        let mut client = ctx.client()?;
        ctx.expect_rows(
            client.as_mut(),
            "the package once",
            &format!("SELECT id FROM {}", ctx.table("items")),
            &["1"],
        )?;
        ctx.expect_rows(
            client.as_mut(),
            "one schema version row",
            &format!("SELECT count(*) FROM {}", ctx.table("_dlt_version")),
            &["1"],
        )?;
    }
    Ok(())
}

/// A replace package whose nested job fails keeps the rows it would have replaced, in the root
/// and the nested table (run once per replace strategy).
pub fn failed_replace_keeps_old_rows(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = schema(
        "failure_replace",
        1,
        vec![
            root(
                "items",
                WriteDisposition::Replace,
                &[("id", DataType::Bigint)],
            ),
            nested("items__tags", "items", &[("value", DataType::Text)], false),
        ],
    );
    let mut client = ctx.client()?;
    load(
        client.as_mut(),
        &s,
        &Package::new(
            &s,
            L1,
            &[
                (
                    "items",
                    vec![
                        json!({"id": 1, "_dlt_id": "i1"}),
                        json!({"id": 2, "_dlt_id": "i2"}),
                    ],
                ),
                (
                    "items__tags",
                    vec![json!({"value": "x", "_dlt_parent_id": "i1", "_dlt_list_idx": 0})],
                ),
            ],
        )?,
    )?;
    let mut p2 = Package::new(
        &s,
        L2,
        &[
            ("items", vec![json!({"id": 3, "_dlt_id": "i3"})]),
            (
                "items__tags",
                vec![json!({"value": "y", "_dlt_parent_id": "i3", "_dlt_list_idx": 0})],
            ),
        ],
    )?;
    p2.jobs[1].fail_after = Some(0);
    store_schema(client.as_mut(), &s)?;
    client.is_load_completed(L2)?;
    if attempt(client.as_mut(), &s, &p2).is_ok() {
        return Err(fail("a package whose job stream failed was completed"));
    }
    drop(client);
    let mut client = ctx.client()?;
    ctx.expect_rows(
        client.as_mut(),
        "a failed replace keeps the root rows",
        &format!("SELECT id FROM {}", ctx.table("items")),
        &["1", "2"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a failed replace keeps the nested rows",
        &format!("SELECT value FROM {}", ctx.table("items__tags")),
        &["x"],
    )?;
    p2.jobs[1].fail_after = None;
    load(client.as_mut(), &s, &p2)?;
    ctx.expect_rows(
        client.as_mut(),
        "the replace retried",
        &format!("SELECT id FROM {}", ctx.table("items")),
        &["3"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "the replace retried (nested)",
        &format!("SELECT value FROM {}", ctx.table("items__tags")),
        &["y"],
    )
}
