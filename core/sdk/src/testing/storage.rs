//! Storage, stored schemas, pipeline state and dropping tables.

use serde_json::json;

use super::fail;
use super::kit::{self, load, root, schema, state_row, store_schema, Ctx, Package, PIPELINE};
use crate::schema::{DataType, WriteDisposition};
use crate::Result;

/// `initialize_storage` twice, `is_storage_initialized`, `drop_storage`.
pub fn storage(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut client = ctx.client()?;
    if client.is_storage_initialized()? {
        return Err(fail(
            "a new dataset is initialized before initialize_storage",
        ));
    }
    client.initialize_storage()?;
    client.initialize_storage()?;
    if !client.is_storage_initialized()? {
        return Err(fail("storage is not initialized after initialize_storage"));
    }
    if client.get_stored_schema(PIPELINE)?.is_some() {
        return Err(fail("a new dataset has a stored schema"));
    }
    if client.get_stored_state(PIPELINE)?.is_some() {
        return Err(fail("a new dataset has a stored state"));
    }
    client.drop_storage()?;
    if client.is_storage_initialized()? {
        return Err(fail("storage still exists after drop_storage"));
    }
    Ok(())
}

/// Each schema version is stored once; the newest is read back, also by a new client.
pub fn schema_versions(ctx: &mut Ctx<'_>) -> Result<()> {
    let items = || {
        root(
            "items",
            WriteDisposition::Append,
            &[("id", DataType::Bigint)],
        )
    };
    let v1 = schema("schema_versions", 1, vec![items()]);
    let mut v2 = schema("schema_versions", 2, vec![items()]);
    if let Some(t) = v2.tables.get_mut("items") {
        t.columns.insert(
            "name".into(),
            crate::schema::Column::new("name", DataType::Text),
        );
    }
    let mut client = ctx.client()?;
    store_schema(client.as_mut(), &v1)?;
    // the engine stores the schema again before every package
    store_schema(client.as_mut(), &v1)?;
    let stored = client
        .get_stored_schema(PIPELINE)?
        .ok_or_else(|| fail("the stored schema was not found"))?;
    if stored.version_hash != v1.version_hash || stored.version != 1 {
        return Err(fail(format!(
            "stored schema is version {} hash `{}`, expected 1 `{}`",
            stored.version, stored.version_hash, v1.version_hash
        )));
    }
    let doc: crate::schema::Schema = serde_json::from_str(&stored.schema)
        .map_err(|e| fail(format!("the stored schema document is not a schema: {e}")))?;
    if doc != v1 {
        return Err(fail(
            "the stored schema document differs from the one stored",
        ));
    }
    // a package completes the schema's storage (some destinations store it in its transaction)
    let p = Package::new(
        &v1,
        "1700000001.000001",
        &[("items", vec![json!({"id": 1})])],
    )?;
    load(client.as_mut(), &v1, &p)?;
    store_schema(client.as_mut(), &v2)?;
    let p = Package::new(
        &v2,
        "1700000002.000001",
        &[("items", vec![json!({"id": 2, "name": "b"})])],
    )?;
    load(client.as_mut(), &v2, &p)?;
    drop(client);
    let mut client = ctx.client()?;
    let stored = client
        .get_stored_schema(PIPELINE)?
        .ok_or_else(|| fail("the stored schema was not found by a new client"))?;
    if stored.version_hash != v2.version_hash || stored.version != 2 {
        return Err(fail(format!(
            "a new client reads schema version {} hash `{}`, expected the newest, 2 `{}`",
            stored.version, stored.version_hash, v2.version_hash
        )));
    }
    if client.get_stored_schema("no_such_schema")?.is_some() {
        return Err(fail("get_stored_schema found a schema name never stored"));
    }
    if ctx.destination.capabilities().supports_query {
        ctx.expect_rows(
            client.as_mut(),
            "_dlt_version holds one row per version",
            &format!(
                "SELECT version, schema_name, version_hash FROM {} ORDER BY version",
                ctx.table("_dlt_version")
            ),
            &[
                "1 | conformance | schema_versions-v1",
                "2 | conformance | schema_versions-v2",
            ],
        )?;
    }
    Ok(())
}

/// State rows written with packages are restored by a new client: the newest of a completed
/// load of this pipeline; rows of an abandoned package and of other pipelines are not.
pub fn state_restore(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = schema(
        "state_restore",
        1,
        vec![root(
            "items",
            WriteDisposition::Append,
            &[("id", DataType::Bigint)],
        )],
    );
    let mut client = ctx.client()?;
    let mut p1 = Package::new(
        &s,
        "1700000001.000001",
        &[("items", vec![json!({"id": 1})])],
    )?;
    p1.state = Some(state_row(1, "1700000001.000001", PIPELINE));
    load(client.as_mut(), &s, &p1)?;
    // a package with a state row and no data
    let mut p2 = Package::new(&s, "1700000002.000001", &[])?;
    p2.state = Some(state_row(2, "1700000002.000001", PIPELINE));
    load(client.as_mut(), &s, &p2)?;
    // another pipeline writing the same dataset
    let mut p3 = Package::new(&s, "1700000003.000001", &[])?;
    p3.state = Some(state_row(7, "1700000003.000001", "another_pipeline"));
    load(client.as_mut(), &s, &p3)?;
    // an attempt abandoned before complete_load (a killed run)
    let mut p4 = Package::new(
        &s,
        "1700000004.000001",
        &[("items", vec![json!({"id": 4})])],
    )?;
    p4.state = Some(state_row(3, "1700000004.000001", PIPELINE));
    store_schema(client.as_mut(), &s)?;
    client.is_load_completed(&p4.load_id)?;
    kit::start_and_write(client.as_mut(), &s, &p4)?;
    drop(client);

    let mut client = ctx.client()?;
    let got = client
        .get_stored_state(PIPELINE)?
        .ok_or_else(|| fail("a new client found no stored state"))?;
    let want = p2.state.clone().unwrap_or_default();
    if got.state != want.state
        || got.version != want.version
        || got.engine_version != want.engine_version
        || got.pipeline_name != want.pipeline_name
        || got.version_hash != want.version_hash
        || got.load_id != want.load_id
    {
        return Err(fail(format!(
            "get_stored_state returned {got:?}, expected the newest completed one {want:?}"
        )));
    }
    if got.created_at.is_empty() {
        return Err(fail("the restored state has no created_at"));
    }
    let other = client
        .get_stored_state("another_pipeline")?
        .ok_or_else(|| fail("the state of `another_pipeline` was not found"))?;
    if other.version != 7 {
        return Err(fail(format!(
            "the state of `another_pipeline` is version {}, expected 7",
            other.version
        )));
    }
    if client.get_stored_state("no_such_pipeline")?.is_some() {
        return Err(fail(
            "get_stored_state found a pipeline that never stored state",
        ));
    }
    if client.is_load_completed(&p4.load_id)? {
        return Err(fail("an abandoned package is completed"));
    }
    if ctx.destination.capabilities().supports_query {
        ctx.expect_rows(
            client.as_mut(),
            "_dlt_pipeline_state holds the state rows of completed packages",
            &format!(
                "SELECT version, pipeline_name, _dlt_load_id FROM {}",
                ctx.table("_dlt_pipeline_state")
            ),
            &[
                "1 | conformance | 1700000001.000001",
                "2 | conformance | 1700000002.000001",
                "7 | another_pipeline | 1700000003.000001",
            ],
        )?;
        ctx.expect_rows(
            client.as_mut(),
            "_dlt_loads holds one row per completed package, status 0",
            &format!(
                "SELECT load_id, schema_name, status, schema_version_hash FROM {}",
                ctx.table("_dlt_loads")
            ),
            &[
                "1700000001.000001 | conformance | 0 | state_restore-v1",
                "1700000002.000001 | conformance | 0 | state_restore-v1",
                "1700000003.000001 | conformance | 0 | state_restore-v1",
            ],
        )?;
    }
    Ok(())
}

/// `drop_tables` removes a table chain and leaves the others; the dropped tables come back
/// (empty) with the next schema version that has them.
pub fn drop_tables(ctx: &mut Ctx<'_>) -> Result<()> {
    let tables = || {
        vec![
            root(
                "items",
                WriteDisposition::Append,
                &[("id", DataType::Bigint)],
            ),
            kit::nested("items__tags", "items", &[("value", DataType::Text)], false),
            root(
                "keep",
                WriteDisposition::Append,
                &[("id", DataType::Bigint)],
            ),
        ]
    };
    let s1 = schema("drop_tables", 1, tables());
    let mut client = ctx.client()?;
    let p = Package::new(
        &s1,
        "1700000001.000001",
        &[
            ("items", vec![json!({"id": 1, "_dlt_id": "i1"})]),
            (
                "items__tags",
                vec![json!({"value": "a", "_dlt_parent_id": "i1", "_dlt_list_idx": 0})],
            ),
            ("keep", vec![json!({"id": 10})]),
        ],
    )?;
    load(client.as_mut(), &s1, &p)?;
    client.drop_tables(&crate::destination::DropTablesRequest {
        tables: vec!["items".into(), "items__tags".into()],
        staging: true,
    })?;
    for t in ["items", "items__tags"] {
        if client
            .query(
                &format!("SELECT * FROM {}", ctx.table(t)),
                &crate::CancelFlag::new().token(),
            )
            .and_then(|mut s| s.next_batch())
            .is_ok()
        {
            return Err(fail(format!(
                "table `{t}` can still be read after drop_tables"
            )));
        }
    }
    ctx.expect_rows(
        client.as_mut(),
        "a table not dropped keeps its rows",
        &format!("SELECT id FROM {}", ctx.table("keep")),
        &["10"],
    )?;
    drop(client);
    // the engine stores a schema without the dropped tables, then a later run brings them back
    let mut s2 = schema("drop_tables", 2, tables());
    s2.tables.shift_remove("items");
    s2.tables.shift_remove("items__tags");
    let mut client = ctx.client()?;
    let p = Package::new(
        &s2,
        "1700000002.000001",
        &[("keep", vec![json!({"id": 11})])],
    )?;
    load(client.as_mut(), &s2, &p)?;
    let s3 = schema("drop_tables", 3, tables());
    let p = Package::new(
        &s3,
        "1700000003.000001",
        &[("items", vec![json!({"id": 3})])],
    )?;
    load(client.as_mut(), &s3, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "a dropped table is created again, empty, by a later schema",
        &format!("SELECT id FROM {}", ctx.table("items")),
        &["3"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a dropped nested table is created again, empty",
        &format!("SELECT count(*) FROM {}", ctx.table("items__tags")),
        &["0"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "the table not dropped",
        &format!("SELECT id FROM {}", ctx.table("keep")),
        &["10", "11"],
    )
}
