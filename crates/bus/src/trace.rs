//! W3C trace context between `tracing` spans and events.
//!
//! The process's subscriber decides whether spans have OpenTelemetry
//! contexts (`fleet` always installs the layer); without it these functions
//! do nothing, so libraries and tests run the same either way.

use std::str::FromStr as _;

use fleet_events::TraceContext;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The trace context of the current span, to put on an event it publishes;
/// `None` when the span has no OpenTelemetry context.
pub fn current() -> Option<TraceContext> {
    of(&Span::current())
}

/// The trace context of `span`; `None` when it has no OpenTelemetry
/// context.
pub fn of(span: &Span) -> Option<TraceContext> {
    let context = span.context();
    let otel = context.span();
    let span_context = otel.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    );
    let state = span_context.trace_state().header();
    let tracestate = (!state.is_empty()).then_some(state);
    TraceContext::new(traceparent, tracestate).ok()
}

/// Makes the remote span that `trace` names the parent of `span`, which
/// must not have been entered yet, so that `span` joins the publisher's
/// trace. Does nothing without an OpenTelemetry layer.
pub fn set_parent(span: &Span, trace: &TraceContext) {
    let Some(remote) = span_context(trace) else {
        return;
    };
    let parent = opentelemetry::Context::new().with_remote_span_context(remote);
    // Without the layer (or for a span filtered out) there is no parent to
    // set, and a span that has started keeps its own: both are harmless.
    let _ = span.set_parent(parent);
}

/// The span context `trace` carries; `None` for the all-zero ids W3C
/// declares invalid.
fn span_context(trace: &TraceContext) -> Option<SpanContext> {
    let mut parts = trace.traceparent().split('-').skip(1);
    let trace_id = TraceId::from_hex(parts.next()?).ok()?;
    let span_id = SpanId::from_hex(parts.next()?).ok()?;
    let flags = u8::from_str_radix(parts.next()?, 16).ok()?;
    let state = trace
        .tracestate()
        .and_then(|state| TraceState::from_str(state).ok())
        .unwrap_or_default();
    let context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state);
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_becomes_a_remote_span_context() {
        let trace = TraceContext::new(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            Some("vendor=1".to_owned()),
        )
        .unwrap();
        let context = span_context(&trace).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(context.trace_state().get("vendor"), Some("1"));
    }

    #[test]
    fn all_zero_ids_are_no_parent() {
        let trace = TraceContext::new(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
            None,
        )
        .unwrap();
        assert!(span_context(&trace).is_none());
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_current_context() {
        assert!(current().is_none());
    }
}
