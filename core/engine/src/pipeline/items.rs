//! Reading one resource: its batches become items for the normalizer (JSON texts gathered
//! into chunks, big texts passed on as they are, Arrow batches, documents routed to the table
//! they name), with incremental filtering and the resource's new state.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_sdk::resource::{DataFormat, ResourceDescriptor, ResourceRequest};
use sluice_sdk::{CancelFlag, Source, StreamContext};

use super::{Incremental, Pipeline, ProgressEvent, RunOptions, Step};
use crate::normalize::TextOrigin;
use crate::{Error, Result};

/// JSON texts of at least this size go to the normalizer as they are, smaller ones are gathered
/// into chunks of about 4 MiB. Resources with an incremental cursor (filtered text) or
/// `table_name_path` (routed documents) always gather.
const SHARED_TEXT: usize = 1 << 20;

/// One JSON text of a source's batch. The array keeps the whole batch buffer alive (including
/// small texts of it already gathered) until the chunk is merged: at most the chunks in flight,
/// two per worker, plus the 8 items of the multi-resource channel.
struct BatchText(arrow_array::LargeStringArray, usize);

impl AsRef<str> for BatchText {
    fn as_ref(&self) -> &str {
        self.0.value(self.1)
    }
}

/// What a resource hands to the normalizer.
pub(super) enum Item {
    /// JSON documents (lines) for a table, and where their parts come from (for errors).
    Json(String, String, Vec<TextOrigin>),
    /// A big JSON text of a source's batch for a table, passed on without a copy, and where it
    /// comes from.
    Shared(
        String,
        crate::normalize::parallel::SharedText,
        Option<TextOrigin>,
    ),
    /// A typed Arrow batch for a table.
    Arrow(String, arrow_array::RecordBatch),
    /// JSON documents whose table is named by the data (`table_name_path`): the resource, the
    /// raw table name, the documents.
    Routed(Arc<ResourceDescriptor>, String, String),
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    /// Reads one resource: its items go to `out` (JSON texts or Arrow batches, incremental
    /// filtering applied); returns the resource's new state (`None`: leave it as it is).
    /// `together`: the resources read at the same time as this one (empty: one by one).
    pub(super) fn extract_resource(
        &self,
        source: &dyn Source,
        r: &ResourceDescriptor,
        table: &str,
        previous: Option<Map<String, Value>>,
        out: &mut dyn FnMut(Item) -> Result<()>,
        options: &RunOptions,
        load_id: &str,
        together: &[String],
    ) -> Result<Option<Map<String, Value>>> {
        let extract_err = |e: Error| self.step_error(Step::Extract, Some(load_id), e);
        let normalize_err = |e: Error| e;
        let mut resource_state = previous.clone().unwrap_or_default();
        let stored_incremental = resource_state.remove("incremental");
        let mut incremental = match &r.incremental {
            Some(spec) => {
                let stored = stored_incremental
                    .as_ref()
                    .and_then(|i| i.get(&spec.cursor_path))
                    .and_then(Value::as_object);
                let pk = r
                    .primary_key
                    .as_ref()
                    .map(|k| k.columns().into_iter().map(String::from).collect());
                Some(Incremental::new(&r.name, spec, stored, pk).map_err(extract_err)?)
            }
            None => None,
        };
        let request = ResourceRequest {
            resource: r.name.clone(),
            state: if resource_state.is_empty() {
                Value::Null
            } else {
                Value::Object(resource_state.clone())
            },
            incremental: incremental.as_ref().map(Incremental::window),
            limit: options.limit,
            run_resources: together.to_vec(),
            run_id: (!together.is_empty()).then(|| load_id.to_string()),
            ..Default::default()
        };
        let flag = CancelFlag::new();
        let mut stream = source
            .open_resource(request, StreamContext::new(flag.token()))
            .map_err(|e| extract_err(e.into()))?;
        let mut pending = String::new();
        // where the parts of `pending` come from (the files of a source that names them)
        let mut origins: Vec<TextOrigin> = Vec::new();
        let mut routed: BTreeMap<String, String> = BTreeMap::new();
        let shared = Arc::new(r.clone());
        options.report(ProgressEvent::ResourceStarted {
            resource: r.name.clone(),
        });
        let mut items: u64 = 0;
        while let Some(batch) = stream.next_batch().map_err(|e| extract_err(e.into()))? {
            if options.progress.is_some() {
                items += match r.data_format {
                    DataFormat::Arrow => batch.num_rows() as u64,
                    DataFormat::Json => sluice_sdk::json_texts(&batch)
                        .map(|texts| {
                            texts
                                .map(|t| {
                                    let n = memchr::memchr_iter(b'\n', t.as_bytes()).count() as u64;
                                    n + u64::from(!t.trim_end().is_empty() && !t.ends_with('\n'))
                                })
                                .sum()
                        })
                        .unwrap_or(0),
                };
                options.report(ProgressEvent::Items {
                    resource: r.name.clone(),
                    items,
                });
            }
            match r.data_format {
                DataFormat::Json if r.table_name_path.is_some() => {
                    for text in sluice_sdk::json_texts(&batch).map_err(|e| extract_err(e.into()))? {
                        let kept;
                        let text = match incremental.as_mut() {
                            Some(inc) => {
                                let mut s = String::new();
                                inc.filter_text(text, &mut s).map_err(extract_err)?;
                                kept = s;
                                kept.as_str()
                            }
                            None => text,
                        };
                        route_documents(r, text, &mut routed).map_err(extract_err)?;
                        if incremental.as_ref().is_some_and(Incremental::should_stop) {
                            break;
                        }
                    }
                    for (raw, docs) in routed.iter_mut() {
                        if docs.len() >= 4 << 20 {
                            out(Item::Routed(
                                shared.clone(),
                                raw.clone(),
                                std::mem::take(docs),
                            ))?;
                        }
                    }
                }
                DataFormat::Json => {
                    let texts =
                        sluice_sdk::json_text_array(&batch).map_err(|e| extract_err(e.into()))?;
                    let located = sluice_sdk::json_text_origins(&batch);
                    for (row, text) in texts.iter().enumerate() {
                        let Some(text) = text else { continue };
                        // the name and first line of this text, when the source gives them
                        let origin = located.and_then(|(names, lines)| {
                            use arrow_array::Array as _;
                            let name = names.is_valid(row).then(|| names.value(row))?;
                            let line = lines.is_valid(row).then(|| lines.value(row))?;
                            let name = match origins.last() {
                                Some(o) if &*o.name == name => o.name.clone(),
                                _ => Arc::from(name),
                            };
                            Some(TextOrigin {
                                offset: 0,
                                name,
                                line,
                            })
                        });
                        match incremental.as_mut() {
                            Some(inc) => inc
                                .filter_text_from(text, &mut pending, origin.as_ref())
                                .map_err(extract_err)?,
                            None if text.len() >= SHARED_TEXT => {
                                // a chunk of a file or a big page: the workers read it from the
                                // batch itself (two copies of every byte fewer)
                                if !pending.is_empty() {
                                    out(Item::Json(
                                        table.to_string(),
                                        std::mem::take(&mut pending),
                                        std::mem::take(&mut origins),
                                    ))
                                    .map_err(normalize_err)?;
                                }
                                let shared = BatchText(texts.clone(), row);
                                out(Item::Shared(table.to_string(), Arc::new(shared), origin))
                                    .map_err(normalize_err)?;
                            }
                            None => {
                                match origin {
                                    Some(mut o) => {
                                        o.offset = pending.len();
                                        origins.push(o);
                                    }
                                    // a text of unknown origin after named ones
                                    None if !origins.is_empty() => origins.push(TextOrigin {
                                        offset: pending.len(),
                                        name: Arc::from(""),
                                        line: 0,
                                    }),
                                    None => {}
                                }
                                // exact room for the text and its newline: growing by doubling
                                // would copy each 4 MiB chunk once more
                                pending.reserve(text.len() + 1);
                                pending.push_str(text);
                                pending.push('\n');
                            }
                        }
                        if incremental.as_ref().is_some_and(Incremental::should_stop) {
                            break;
                        }
                        if pending.len() >= 4 << 20 {
                            out(Item::Json(
                                table.to_string(),
                                std::mem::take(&mut pending),
                                std::mem::take(&mut origins),
                            ))
                            .map_err(normalize_err)?;
                        }
                    }
                }
                DataFormat::Arrow => {
                    if !pending.is_empty() {
                        out(Item::Json(
                            table.to_string(),
                            std::mem::take(&mut pending),
                            std::mem::take(&mut origins),
                        ))
                        .map_err(normalize_err)?;
                    }
                    let batch = match incremental.as_mut() {
                        Some(inc) => inc.filter_batch(&batch).map_err(extract_err)?,
                        None => batch,
                    };
                    if batch.num_rows() > 0 {
                        out(Item::Arrow(table.to_string(), batch)).map_err(normalize_err)?;
                    }
                }
            }
            if incremental.as_ref().is_some_and(Incremental::should_stop) {
                // row_order: nothing later is in the window; close the stream (no more pages)
                tracing::debug!(target: "sluice::pipeline", resource = %r.name, "incremental row_order reached the end of the window");
                break;
            }
        }
        if !pending.is_empty() {
            out(Item::Json(table.to_string(), pending, origins)).map_err(normalize_err)?;
        }
        for (raw, docs) in routed {
            if !docs.is_empty() {
                out(Item::Routed(shared.clone(), raw, docs))?;
            }
        }
        options.report(ProgressEvent::ResourceDone {
            resource: r.name.clone(),
            items,
        });
        // the resource's new state
        let mut new_state = match stream.final_state() {
            Some(Value::Object(m)) => m,
            Some(_) | None => resource_state,
        };
        if let (Some(inc), Some(spec)) = (&incremental, &r.incremental) {
            let prev = stored_incremental
                .as_ref()
                .and_then(|i| i.get(&spec.cursor_path))
                .and_then(Value::as_object);
            if let Some(s) = inc.final_state(prev) {
                let mut incs = stored_incremental
                    .as_ref()
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                incs.insert(spec.cursor_path.clone(), s);
                new_state.insert("incremental".into(), Value::Object(incs));
            }
        } else if let Some(i) = stored_incremental {
            new_state.insert("incremental".into(), i);
        }
        Ok((!new_state.is_empty() || previous.is_some()).then_some(new_state))
    }
}

/// Groups documents by the table their `table_name_path` field names (dlt's callable table
/// names, e.g. GitHub events by `type`).
fn route_documents(
    r: &ResourceDescriptor,
    text: &str,
    routed: &mut BTreeMap<String, String>,
) -> Result<()> {
    let path: Vec<&str> = r
        .table_name_path
        .as_deref()
        .unwrap_or_default()
        .trim_start_matches("$.")
        .split('.')
        .collect();
    let mut parser = crate::json::Parser::new(text);
    let mut doc = crate::json::Doc::new();
    while parser
        .next_document(&mut doc)
        .map_err(|e| Error::data(format!("invalid JSON from resource `{}`: {e}", r.name)))?
    {
        let root = doc.root();
        let items: Vec<crate::json::NodeRef<'_, '_>> = if root.is_array() {
            root.items().collect()
        } else {
            vec![root]
        };
        for item in items {
            let mut node = Some(item);
            for k in &path {
                node = node.and_then(|n| n.get(k));
            }
            let name = node.and_then(|n| n.as_str()).ok_or_else(|| {
                Error::data(format!(
                    "resource `{}`: a document has no text at `{}`, which names its table",
                    r.name,
                    r.table_name_path.as_deref().unwrap_or_default()
                ))
            })?;
            let slot = routed.entry(name.to_string()).or_default();
            crate::json::write_compact(item, slot);
            slot.push('\n');
        }
    }
    Ok(())
}
