//! The retry policy, as pure functions: what to do after each HTTP answer,
//! how long to back off, and what the server said. Kept apart from the HTTP
//! client so every rule is a plain unit test.

use std::time::Duration;

use serde_json::Value;

use super::Backoff;

/// The longest `Retry-After` we honour; a server asking for more is treated
/// as a failure rather than parking the push for minutes (the Genesys Go SDK
/// draws the same line at 180 s).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(180);

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Try again after this long; the reason is for the push log.
    Retry {
        after: Duration,
        reason: String,
    },
    /// Get a fresh token and try again at once (first 401 only).
    RefreshToken,
    /// Give up with this message.
    Fail {
        message: String,
    },
    /// Give up: a permission is missing; the message names it.
    Forbidden {
        message: String,
    },
}

/// Rate-limit headers of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateHints {
    /// `Retry-After`, in seconds.
    pub retry_after_s: Option<f64>,
    /// `inin-ratelimit-reset`, in seconds.
    pub reset_s: Option<f64>,
}

impl RateHints {
    /// Reads the two headers, ignoring values that are not plain seconds.
    pub fn parse(retry_after: Option<&str>, reset: Option<&str>) -> Self {
        let secs = |v: Option<&str>| {
            v.and_then(|s| s.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0)
        };
        Self { retry_after_s: secs(retry_after), reset_s: secs(reset) }
    }
}

/// Exponential backoff with jitter for attempt `n` (1-based); `jitter` in
/// 0..=1 picks a point in the upper half of the window so retries from many
/// pushes spread out but never collapse to zero.
pub fn backoff_delay(b: &Backoff, attempt: u32, jitter: f64) -> Duration {
    let exp = b.initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(b.max);
    // A NaN jitter (never from `rand`, but this is a pure function) counts as 0.
    let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
    crate::duration::scale(capped, 0.5 + 0.5 * jitter)
}

/// Classifies one answer to a push. `refreshed` says whether this push has
/// already refreshed its token once.
pub fn classify(
    status: u16,
    hints: RateHints,
    body: &str,
    attempt: u32,
    refreshed: bool,
    backoff: &Backoff,
    jitter: f64,
) -> Verdict {
    match status {
        200..=299 => Verdict::Done,
        401 if !refreshed => Verdict::RefreshToken,
        401 => Verdict::Fail {
            message: format!("unauthorized even with a fresh token: {}", server_message(body)),
        },
        403 => Verdict::Forbidden { message: forbidden_message(body) },
        429 => {
            // A wait too large to represent is simply more than we wait.
            let wait = hints
                .retry_after_s
                .or(hints.reset_s)
                .map(|s| crate::duration::from_secs_f64(s).unwrap_or(Duration::MAX));
            match wait {
                Some(w) if w > MAX_RETRY_AFTER => Verdict::Fail {
                    message: format!("rate limited for {} s (more than we wait)", w.as_secs()),
                },
                Some(w) => Verdict::Retry { after: w, reason: "429 rate limited".into() },
                None => Verdict::Retry {
                    after: backoff_delay(backoff, attempt, jitter),
                    reason: "429 rate limited".into(),
                },
            }
        }
        501 => Verdict::Fail { message: format!("501 not implemented: {}", server_message(body)) },
        500..=599 => Verdict::Retry {
            after: backoff_delay(backoff, attempt, jitter),
            reason: format!("{status} {}", short(&server_message(body))),
        },
        _ => Verdict::Fail { message: format!("{status}: {}", server_message(body)) },
    }
}

/// The human part of an error body: Genesys `ErrorBody.message`, an OAuth
/// `error_description`, or the start of the raw text.
pub fn server_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        for key in ["message", "error_description", "description", "error"] {
            if let Some(m) = v.get(key).and_then(Value::as_str).filter(|m| !m.is_empty()) {
                return m.to_string();
            }
        }
    }
    let t = body.trim();
    if t.is_empty() { "no message from the server".into() } else { short(t) }
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(200).collect();
    s.replace('\n', " ")
}

/// Permission names in a 403 body: `messageParams`, `details`, the message
/// text `...permission(s): [a, b]`, or a `missingPermissions` array.
pub fn missing_permissions(body: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        let p = p.trim().trim_matches(|c| c == '[' || c == ']' || c == '"').trim();
        if p.contains(':') && !out.iter().any(|x| x == p) {
            out.push(p.to_string());
        }
    };
    if let Some(arr) = v.get("missingPermissions").and_then(Value::as_array) {
        arr.iter().filter_map(Value::as_str).for_each(&mut add);
    }
    if let Some(params) = v.get("messageParams").and_then(Value::as_object) {
        for val in params.values() {
            val.as_str().into_iter().flat_map(|s| s.split(',')).for_each(&mut add);
        }
    }
    if let Some(m) = v.get("message").and_then(Value::as_str)
        && let Some(start) = m.find('[')
        && let Some(end) = m[start..].find(']')
    {
        m[start + 1..start + end].split(',').for_each(&mut add);
    }
    out
}

fn forbidden_message(body: &str) -> String {
    let perms = missing_permissions(body);
    if perms.is_empty() {
        format!(
            "the OAuth client's role lacks a permission this call needs (server said: {})",
            server_message(body)
        )
    } else {
        format!("missing permission {} (grant it to the OAuth client's role)", perms.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) };

    fn verdict(status: u16, hints: RateHints, body: &str) -> Verdict {
        classify(status, hints, body, 1, false, &B, 1.0)
    }

    #[test]
    fn success_and_token_refresh() {
        assert_eq!(verdict(204, RateHints::default(), ""), Verdict::Done);
        assert_eq!(verdict(401, RateHints::default(), ""), Verdict::RefreshToken);
        let again = classify(
            401,
            RateHints::default(),
            r#"{"message":"Invalid login credentials."}"#,
            2,
            true,
            &B,
            0.0,
        );
        assert!(matches!(again, Verdict::Fail { message } if message.contains("Invalid login credentials")));
    }

    #[test]
    fn rate_limits_wait_for_retry_after_then_reset_then_backoff() {
        let both = RateHints::parse(Some("3"), Some("61"));
        assert_eq!(
            verdict(429, both, ""),
            Verdict::Retry { after: Duration::from_secs(3), reason: "429 rate limited".into() }
        );
        let reset_only = RateHints::parse(None, Some("2"));
        assert!(
            matches!(verdict(429, reset_only, ""), Verdict::Retry { after, .. } if after == Duration::from_secs(2))
        );
        let none = RateHints::parse(Some("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert!(
            matches!(verdict(429, none, ""), Verdict::Retry { after, .. } if after == Duration::from_millis(100))
        );
        let huge = RateHints::parse(Some("600"), None);
        assert!(matches!(verdict(429, huge, ""), Verdict::Fail { .. }));
    }

    #[test]
    fn absurd_rate_limit_headers_fail_the_attempt_without_panicking() {
        for (retry_after, reset) in
            [(Some("1e20"), None), (None, Some("1e300")), (Some("18446744073709551616"), None)]
        {
            let hints = RateHints::parse(retry_after, reset);
            assert!(
                matches!(verdict(429, hints, ""), Verdict::Fail { ref message } if message.contains("more than we wait")),
                "{retry_after:?} {reset:?}"
            );
        }
        assert_eq!(backoff_delay(&B, 3, f64::NAN), Duration::from_millis(200));
    }

    #[test]
    fn server_errors_back_off_and_client_errors_fail_with_the_server_message() {
        assert!(matches!(verdict(503, RateHints::default(), ""), Verdict::Retry { .. }));
        assert!(matches!(verdict(501, RateHints::default(), ""), Verdict::Fail { .. }));
        let body = r#"{"message":"Invalid value for results","code":"invalid.value","status":400}"#;
        assert_eq!(
            verdict(400, RateHints::default(), body),
            Verdict::Fail { message: "400: Invalid value for results".into() }
        );
    }

    #[test]
    fn forbidden_names_the_missing_permission() {
        let body = r#"{"message":"You are missing the following permission(s): [agentAssist:suggestion:add]","code":"missing.permissions","status":403}"#;
        let Verdict::Forbidden { message } = verdict(403, RateHints::default(), body) else { panic!() };
        assert!(message.contains("agentAssist:suggestion:add"), "{message}");
        let Verdict::Forbidden { message } = verdict(403, RateHints::default(), "nope") else { panic!() };
        assert!(message.contains("lacks a permission"), "{message}");
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        assert_eq!(backoff_delay(&B, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&B, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(&B, 3, 0.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(&B, 30, 1.0), Duration::from_secs(2));
    }
}
