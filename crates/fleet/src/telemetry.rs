//! Tracing set-up, done once at start-up: logs to stderr and OpenTelemetry
//! spans, exported over OTLP/HTTP when an endpoint is configured.
//!
//! The OpenTelemetry layer is always installed, so every span has a trace
//! and a span id, events carry them to the next step (`fleet_bus::trace`),
//! and JSON log lines show them even when nothing is exported.

use std::sync::OnceLock;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The filter when `RUST_LOG` is unset. vaultrs logs expected answers (a
/// missing secret, a lost check-and-set) at ERROR; `fleet-secrets` reports
/// what matters itself.
const DEFAULT_FILTER: &str = "info,vaultrs=off,rustify=off";

/// Targets whose events would carry secrets at any level.
const NEVER_LOGGED: &str = "aws_sigv4=off";

/// The installed subscriber, for the JSON formatter to look up the
/// OpenTelemetry context of the span an event is in.
static DISPATCH: OnceLock<WeakDispatch> = OnceLock::new();

/// Flushes and stops span export when dropped, at the end of `main`.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub(crate) struct Guard {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.exporting {
            return;
        }
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error.message = %e, "Exporting the last spans failed.");
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`),
/// `FLEET_LOG_FORMAT=json` switches to one JSON object per line (with
/// `trace_id` and `span_id` inside a span), and spans go to the OTLP/HTTP
/// endpoint of `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) when one is set, as service
/// `OTEL_SERVICE_NAME` (default `fleet-<command>`).
pub(crate) fn init() -> Guard {
    let settings = Settings::from_env();
    let (provider, export_error) = tracer_provider(&settings);
    let tracer = provider.tracer("fleet");
    // aws-sigv4 traces each request it signs with every header value,
    // secret ones included: never logged, whatever RUST_LOG says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        .add_directive(NEVER_LOGGED.parse().expect("a valid directive"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if settings.json_logs {
        fmt.json()
            .flatten_event(true)
            .map_event_format(|json| WithTraceIds { json })
            .boxed()
    } else {
        fmt.boxed()
    };
    let dispatch: tracing::Dispatch = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(fmt)
        .into();
    let _ = DISPATCH.set(dispatch.downgrade());
    dispatch.init();
    if let Some(e) = &export_error {
        tracing::warn!(error.message = %e, "Spans will not be exported: the OTLP exporter cannot be built.");
    }
    Guard {
        exporting: settings.endpoint && export_error.is_none(),
        provider,
    }
}

/// What the environment asks of telemetry; read before the configuration,
/// because the configuration's own errors are logged.
struct Settings {
    json_logs: bool,
    /// Whether an OTLP endpoint is set.
    endpoint: bool,
    service_name: String,
}

impl Settings {
    #[expect(
        clippy::disallowed_methods,
        reason = "logging is set up before configuration is loaded"
    )]
    fn from_env() -> Self {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let command = std::env::args()
            .nth(1)
            .filter(|arg| !arg.starts_with('-'))
            .map_or_else(|| "fleet".to_owned(), |command| format!("fleet-{command}"));
        Self {
            json_logs: std::env::var("FLEET_LOG_FORMAT")
                .is_ok_and(|v| v.eq_ignore_ascii_case("json")),
            endpoint: set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            service_name: std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|name| !name.trim().is_empty())
                .unwrap_or(command),
        }
    }
}

/// The tracer provider: always sampling, exporting in batches (sized and
/// timed by the standard `OTEL_BSP_*` variables) when an endpoint is set.
fn tracer_provider(
    settings: &Settings,
) -> (
    SdkTracerProvider,
    Option<opentelemetry_otlp::ExporterBuildError>,
) {
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    // Every trace is kept, whatever a caller's `traceparent` says: a tenant
    // cannot switch tracing off for its requests and the steps they start.
    let builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn);
    if !settings.endpoint {
        return (builder.build(), None);
    }
    match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => (builder.with_batch_exporter(exporter).build(), None),
        Err(e) => (builder.build(), Some(e)),
    }
}

/// The JSON event format with the current span's `trace_id` and `span_id`
/// first, so every line inside a request or step names its trace.
struct WithTraceIds {
    json: Format<Json>,
}

impl<S> FormatEvent<S, JsonFields> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let ids = ctx.lookup_current().and_then(|span| ids(&span.id()));
        let Some((trace_id, span_id)) = ids else {
            return self.json.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.json.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
}

/// The trace and span id of span `id`, when it has a valid OpenTelemetry
/// context.
fn ids(id: &tracing::span::Id) -> Option<(String, String)> {
    let dispatch = DISPATCH.get()?.upgrade()?;
    let context = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// Logs the error that ends the process, with its cause chain.
pub(crate) fn report_exit(error: &anyhow::Error) {
    tracing::error!(
        error.message = %error,
        error.cause_chain = ?error,
        "The command failed."
    );
}
