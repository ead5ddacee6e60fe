//! HTTP statuses, bodies and transport errors to [`FailureClass`].

use std::time::Duration;

use super::{FailureClass, ProviderError, TimeoutKind};

/// Longest piece of an error body kept in a message.
const BODY_IN_MESSAGE: usize = 300;

/// Classify a non-2xx answer by status and, where the status is ambiguous, by body.
pub fn classify_http(status: u16, body: &str) -> ProviderError {
    let lower = body.to_ascii_lowercase();
    let mentions = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let billing = mentions(&[
        "insufficient_quota",
        "billing",
        "credit balance",
        "payment",
        "quota exceeded",
    ]);
    let overflow = mentions(&[
        "context_length",
        "context length",
        "context window",
        "maximum context",
        "prompt is too long",
        "too many tokens",
        "reduce the length",
    ]);
    let no_model = lower.contains("model")
        && mentions(&[
            "not found",
            "not_found",
            "does not exist",
            "unknown model",
            "no such model",
        ]);
    let class = match status {
        401 => FailureClass::Auth,
        402 => FailureClass::Billing,
        403 if billing => FailureClass::Billing,
        403 => FailureClass::Auth,
        429 if billing => FailureClass::Billing,
        429 => FailureClass::RateLimit,
        404 if no_model || lower.contains("model") => FailureClass::ModelNotFound,
        408 => FailureClass::Timeout(TimeoutKind::FirstByte),
        413 => FailureClass::ContextOverflow,
        400 | 422 if overflow => FailureClass::ContextOverflow,
        400 | 422 if no_model => FailureClass::ModelNotFound,
        503 | 529 => FailureClass::Overloaded,
        500..=599 if lower.contains("overloaded") => FailureClass::Overloaded,
        500..=599 => FailureClass::Server,
        _ => FailureClass::Format,
    };
    let excerpt: String = body.trim().chars().take(BODY_IN_MESSAGE).collect();
    let message = if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    };
    ProviderError {
        class,
        message,
        status: Some(status),
        retry_after: None,
    }
}

/// Classify an error object that arrives inside a stream (`{"error": {"type": ...}}`).
pub fn classify_stream_error(kind: &str, message: &str) -> ProviderError {
    let status = match kind {
        "overloaded_error" => 529,
        "rate_limit_error" => 429,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "invalid_request_error" => 400,
        "api_error" => 500,
        _ => 500,
    };
    let mut error = classify_http(status, &format!("{kind}: {message}"));
    error.status = None;
    error
}

/// Transport errors: connect failures, resets, timeouts inside reqwest.
pub fn classify_reqwest(error: &reqwest::Error) -> ProviderError {
    let class = if error.is_timeout() && error.is_connect() {
        FailureClass::Timeout(TimeoutKind::Connect)
    } else if error.is_timeout() {
        FailureClass::Timeout(TimeoutKind::FirstByte)
    } else if error.is_connect() || error.is_request() {
        FailureClass::Network
    } else if error.is_body() || error.is_decode() {
        FailureClass::StreamInterrupted
    } else {
        FailureClass::Network
    };
    ProviderError::new(class, describe(error))
}

/// The error and its causes on one line, without the URL (it may carry a key in a query).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), &crate::config::redact_url(url.as_str()));
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date (a date already past
/// means no wait). Uncapped here; the policy caps it (`retry_after_max_ms`).
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after_at(headers, std::time::SystemTime::now())
}

fn parse_retry_after_at(
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_millis(ms as u64));
    }
    let value = text("retry-after")?.trim();
    // A day is already far past any cap; larger values only risk overflow.
    let day = Duration::from_secs(86_400);
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO).min(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies_classify() {
        let c = |s, b| classify_http(s, b).class;
        assert_eq!(c(401, ""), FailureClass::Auth);
        assert_eq!(c(429, "slow down"), FailureClass::RateLimit);
        assert_eq!(
            c(429, r#"{"error":{"code":"insufficient_quota"}}"#),
            FailureClass::Billing
        );
        assert_eq!(c(402, ""), FailureClass::Billing);
        assert_eq!(c(503, ""), FailureClass::Overloaded);
        assert_eq!(c(529, ""), FailureClass::Overloaded);
        assert_eq!(c(500, ""), FailureClass::Server);
        assert_eq!(c(502, "Bad gateway"), FailureClass::Server);
        assert_eq!(
            c(400, "This model's maximum context length is 8192 tokens"),
            FailureClass::ContextOverflow
        );
        assert_eq!(
            c(404, r#"{"error":"model 'nope' not found"}"#),
            FailureClass::ModelNotFound
        );
        assert_eq!(
            c(400, "The model `x` does not exist"),
            FailureClass::ModelNotFound
        );
        assert_eq!(c(400, "messages: field required"), FailureClass::Format);
        assert_eq!(
            classify_stream_error("overloaded_error", "Overloaded").class,
            FailureClass::Overloaded
        );
    }

    #[test]
    fn error_messages_are_cut_short() {
        let body = "x".repeat(10_000);
        let e = classify_http(500, &body);
        assert!(e.message.len() < 400, "{}", e.message.len());
    }

    #[test]
    fn retry_after_in_seconds_or_ms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "-5".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
        h.insert("retry-after", "soon, please".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |value: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("retry-after", value.parse().unwrap());
            parse_retry_after_at(&h, now)
        };
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:07 GMT"),
            Some(Duration::from_secs(7))
        );
        // RFC 850 and asctime, which HTTP still allows.
        assert_eq!(
            at("Wednesday, 21-Oct-15 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            at("Wed Oct 21 07:29:00 2015"),
            Some(Duration::from_secs(60))
        );
        // Past: no wait. Far future: a day at most (the policy's cap then falls back).
        assert_eq!(at("Tue, 20 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(
            at("Wed, 21 Oct 2099 07:28:00 GMT"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(at("Wed, 32 Oct 2015 07:28:00 GMT"), None);
    }
}
