//! Forwards a plugin's `tracing` events, `log` records and panic messages to the host.
//!
//! Each plugin library links its own copies of `tracing`, `log` and std, with their own global
//! dispatchers and panic hook; without this bridge their output would be lost (or printed to
//! stderr). At `init` the SDK installs a subscriber layer and a `log` bridge that format records
//! and call the host's `log` callback, and a panic hook that reports the message and location.
//! When a plugin is linked statically into a host that already has a subscriber, installing
//! fails quietly and events go to the host's subscriber directly.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sluice_abi::LogLevel;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::export::PluginState;

struct HostLayer {
    state: &'static PluginState,
}

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::ERROR,
        Level::WARN => LogLevel::WARN,
        Level::INFO => LogLevel::INFO,
        Level::DEBUG => LogLevel::DEBUG,
        Level::TRACE => LogLevel::TRACE,
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields
                .insert(field.name().to_string(), Value::from(value));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.fields
                .insert(field.name().to_string(), Value::from(format!("{value:?}")));
        }
    }
}

impl<S: Subscriber> Layer<S> for HostLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        match self.state.host() {
            Some(host) => level_of(metadata.level()) <= host.max_level,
            None => false,
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(host) = self.state.host() else {
            return;
        };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        // `log` records converted by tracing-log carry their real target in `log.target`
        let target = fields
            .fields
            .remove("log.target")
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| meta.target().to_string());
        fields.fields.retain(|k, _| !k.starts_with("log."));
        let fields_json = Value::Object(fields.fields).to_string();
        host.log(
            level_of(meta.level()),
            &target,
            &fields.message,
            &fields_json,
        );
    }
}

/// Installs the bridge for `state`'s plugin (once per library).
pub(crate) fn install(state: &'static PluginState) {
    let subscriber = tracing_subscriber::registry().with(HostLayer { state });
    let _ = tracing::subscriber::set_global_default(subscriber);
    let _ = tracing_log::LogTracer::init();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic payload)".to_string()
        };
        if let Some(host) = state.host() {
            let fields = serde_json::json!({ "location": location }).to_string();
            host.log(
                LogLevel::ERROR,
                "panic",
                &format!(
                    "plugin `{}` panicked at {location}: {message}",
                    state.name()
                ),
                &fields,
            );
        }
    }));
}

/// Nothing is buffered today; kept so `shutdown` has a place to flush if that changes.
pub(crate) fn flush() {}
