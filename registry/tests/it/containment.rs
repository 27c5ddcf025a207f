use std::sync::{Arc, Mutex};

use serde_json::json;
use sluice_sdk::{CancelFlag, ErrorCode, ResourceRequest, Source, StreamContext};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::*;

fn request(resource: &str) -> ResourceRequest {
    ResourceRequest {
        resource: resource.into(),
        ..Default::default()
    }
}

fn ctx() -> StreamContext {
    StreamContext::new(CancelFlag::new().token())
}

#[test]
fn a_panic_in_a_plugin_call_poisons_only_that_plugin() {
    let (_a_dir, a) = private_sample();
    let (_b_dir, b) = private_sample();
    assert!(!Arc::ptr_eq(&a, &b));
    let source_a = a.open_source(&json!({}), &json!({})).expect("open a");
    let err = source_a
        .open_resource(request("panic_on_open"), ctx())
        .expect_err("panic");
    assert_eq!(err.code, ErrorCode::PANIC);
    assert!(
        err.message.contains(
            "plugin `sample` panicked while opening a resource: boom while opening a resource"
        ),
        "{err}"
    );
    assert!(a.is_poisoned());
    // every later call of that plugin is refused
    let err = source_a.describe().expect_err("poisoned");
    assert_eq!(err.code, ErrorCode::POISONED, "{err}");
    let err = a.open_source(&json!({}), &json!({})).expect_err("poisoned");
    assert!(
        err.to_string()
            .contains("panicked earlier and was disabled"),
        "{err}"
    );
    // the other copy and other plugins keep working
    let source_b = b
        .open_source(&json!({"rows": 10}), &json!({}))
        .expect("open b");
    let mut stream = source_b
        .open_resource(request("numbers"), ctx())
        .expect("stream");
    assert_eq!(
        stream
            .next_batch()
            .expect("batch")
            .expect("some")
            .num_rows(),
        10
    );
    assert!(!b.is_poisoned());
    let recorder = registry()
        .load("destination", "recorder")
        .expect("recorder");
    let dir = tempfile::tempdir().expect("tmp");
    recorder
        .open_destination(&json!({"path": dir.path()}), &json!({}))
        .expect("recorder works");
}

#[test]
fn a_panic_inside_next_batch_becomes_a_stream_error() {
    let (_dir, plugin) = private_sample();
    let source = plugin.open_source(&json!({}), &json!({})).expect("open");
    let mut stream = source
        .open_resource(request("panic_in_next"), ctx())
        .expect("stream");
    let err = stream.next_batch().expect_err("panic");
    assert_eq!(err.code, ErrorCode::PANIC, "{err}");
    assert!(err.message.contains("boom inside next_batch"), "{err}");
    assert!(plugin.is_poisoned());
    let err = source
        .open_resource(request("numbers"), ctx())
        .expect_err("poisoned");
    assert_eq!(err.code, ErrorCode::POISONED);
}

#[test]
fn two_copies_loaded_from_two_paths_are_independent_instances() {
    let (_d1, one) = private_sample();
    let (_d2, two) = private_sample();
    let opened = |plugin: &Arc<sluice_registry::LoadedPlugin>| {
        let source = plugin.open_source(&json!({}), &json!({})).expect("open");
        let mut stream = source
            .open_resource(request("instance"), ctx())
            .expect("stream");
        let batch = stream.next_batch().expect("batch").expect("some");
        let text = sluice_sdk::json_texts(&batch)
            .expect("texts")
            .next()
            .expect("doc")
            .to_string();
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["opened"]
            .as_u64()
            .expect("n")
    };
    assert_eq!(opened(&one), 1);
    assert_eq!(opened(&one), 2);
    assert_eq!(opened(&two), 1, "the second copy has its own statics");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", f.name(), v));
            }
            fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                self.0.push_str(&format!("{}={} ", f.name(), v));
            }
        }
        let mut v = V(format!(
            "{} {} ",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut v);
        if let Ok(mut g) = self.0.lock() {
            g.push(v.0);
        }
    }
}

#[test]
fn plugin_logs_and_panics_arrive_through_the_host_tracing() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with(captured.clone());
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets a subscriber");
    // a fresh copy, so its init sees this subscriber's level
    let (_dir, plugin) = private_sample();
    let source = plugin
        .open_source(&json!({"rows": 3}), &json!({"token": "hunter2-secret"}))
        .expect("open");
    let mut stream = source
        .open_resource(request("numbers"), ctx())
        .expect("stream");
    while stream.next_batch().expect("batch").is_some() {}
    let _ = source.open_resource(request("panic_on_open"), ctx());
    let lines = captured.0.lock().expect("lock").clone();
    let joined = lines.join("\n");
    assert!(
        lines.iter().any(|l| l.starts_with("INFO sluice::plugin")
            && l.contains("message=opening resource")
            && l.contains("plugin=sample")
            && l.contains("numbers")),
        "{joined}"
    );
    // a `log` record (not tracing) from the plugin
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("DEBUG sluice::plugin") && l.contains("request:")),
        "{joined}"
    );
    // the panic message with its location
    assert!(
        lines.iter().any(|l| l.starts_with("ERROR sluice::plugin")
            && l.contains("boom while opening a resource")
            && l.contains("lib.rs")),
        "{joined}"
    );
    assert!(
        !joined.contains("hunter2-secret"),
        "a secret reached the logs: {joined}"
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    let plugin = registry().load("source", "sample").expect("load");
    let err = plugin
        .open_source(
            &json!({"rows": "many"}),
            &json!({"token": "hunter2-secret"}),
        )
        .expect_err("bad config");
    let msg = err.to_string();
    assert!(
        msg.contains("`rows` in config of source `sample` must be integer, got a string"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}
