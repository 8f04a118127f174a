use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};

use crate::ParseError;

/// Longest accepted `tracestate`, the W3C propagation limit.
pub(crate) const MAX_TRACESTATE_LEN: usize = 512;

/// W3C Trace Context of the span that published an event, so that the
/// consumer's span joins the same trace.
///
/// The check is deliberately loose: `traceparent` must have the version-00
/// shape, and `tracestate` must be printable ASCII, because both are also
/// copied into NATS headers, where a newline would end the header block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TraceContext {
    /// W3C traceparent: 00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>.
    #[schemars(regex(pattern = r"^00-[0-9a-fA-F]{32}-[0-9a-fA-F]{16}-[0-9a-fA-F]{2}$"))]
    traceparent: String,
    /// W3C tracestate: vendor-specific key=value list, printable ASCII.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TRACESTATE_LEN), regex(pattern = r"^[\x20-\x7e]*$"))]
    tracestate: Option<String>,
}

impl TraceContext {
    /// Checks and wraps a `traceparent` and an optional `tracestate`.
    ///
    /// # Errors
    ///
    /// `traceparent` is not `00-<32 hex>-<16 hex>-<2 hex>`, or `tracestate`
    /// is longer than 512 characters or not printable ASCII.
    pub fn new(traceparent: String, tracestate: Option<String>) -> Result<Self, ParseError> {
        if !is_traceparent(&traceparent) {
            return Err(ParseError::Traceparent { value: traceparent });
        }
        if let Some(state) = &tracestate
            && (state.len() > MAX_TRACESTATE_LEN
                || !state.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
        {
            return Err(ParseError::Tracestate);
        }
        Ok(Self {
            traceparent,
            tracestate,
        })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, if the publisher had one.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

fn is_traceparent(value: &str) -> bool {
    let hex =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let mut parts = value.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("00"), Some(trace_id), Some(parent_id), Some(flags), None)
            if hex(trace_id, 32) && hex(parent_id, 16) && hex(flags, 2)
    )
}

impl<'de> Deserialize<'de> for TraceContext {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The unchecked wire form.
        #[derive(Deserialize)]
        struct Raw {
            traceparent: String,
            #[serde(default)]
            tracestate: Option<String>,
        }

        let raw = Raw::deserialize(deserializer)?;
        Self::new(raw.traceparent, raw.tracestate).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_version_00_traceparent_is_accepted() {
        let trace = TraceContext::new(PARENT.into(), Some("congo=t61rcWkgMzE".into())).unwrap();
        assert_eq!(trace.traceparent(), PARENT);
        assert_eq!(trace.tracestate(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for value in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(
                matches!(
                    TraceContext::new(value.into(), None),
                    Err(ParseError::Traceparent { .. })
                ),
                "{value:?} was accepted"
            );
        }
    }

    #[test]
    fn a_tracestate_that_would_break_a_nats_header_is_refused() {
        for state in [
            "a=1\r\nX-Injected: 1".to_owned(),
            "a=é".to_owned(),
            "a".repeat(513),
        ] {
            assert_eq!(
                TraceContext::new(PARENT.into(), Some(state)),
                Err(ParseError::Tracestate)
            );
        }
    }

    #[test]
    fn deserializing_checks_the_trace_context() {
        let err = serde_json::from_str::<TraceContext>(r#"{"traceparent":"nope"}"#).unwrap_err();
        assert!(err.to_string().contains("traceparent \"nope\""), "{err}");
    }
}
