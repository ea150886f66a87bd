//! Fault injection for the simulator: `--fault KIND[:key=value,...]`,
//! repeatable. Parsing, and the counters that decide when a fault fires.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Every Nth push answers 429, with `Retry-After: S` when given.
    Push429 { every: u64, retry_after_s: Option<f64> },
    /// Every Nth push answers 500.
    Push500 { every: u64 },
    /// Every Nth push is recorded, then answered only after a delay.
    PushSlow { every: u64, delay: Duration },
    /// Every Nth push answers 403 naming a missing permission.
    Push403 { every: u64 },
    /// Every Nth WebSocket frame is followed by dropping the connection.
    WsDrop { every: u64 },
    /// Every Nth frame is followed by a malformed one (broken JSON, an
    /// unknown topic, a huge frame, a binary frame, in turn).
    WsMalformed { every: u64 },
    /// Every Nth transcription frame is sent twice.
    WsDuplicate { every: u64 },
    /// Tokens stop working this long after issue, whatever `expires_in` said.
    TokenExpire { after: Duration },
    /// Every Nth frame is followed by `v2.system.socket_closing`.
    SocketClosing { every: u64 },
    /// Each connection goes silent (no heartbeats, pongs or events) this
    /// long after it opened, as a hung server would.
    HeartbeatStop { after: Duration },
    /// The analytics conversation details query answers 403, as for a
    /// client without `analytics:conversationDetail:view`.
    Analytics403,
    /// Every Nth analytics query answers 500.
    Analytics500 { every: u64 },
    /// Every Nth channel-creation or subscription request answers 429, with
    /// `Retry-After: S` when given.
    Rest429 { every: u64, retry_after_s: Option<f64> },
    /// Every Nth channel-creation or subscription request answers 503.
    Rest503 { every: u64 },
    /// Knowledge API calls answer 403 naming the missing permission
    /// (`knowledge:knowledgebase:view` or `knowledge:document:view`); with
    /// `on=documents` only the document calls do.
    Knowledge403 { documents_only: bool },
    /// Every Nth Knowledge API call answers 429 with `Retry-After`.
    Knowledge429 { every: u64, retry_after_s: f64 },
    /// Every Nth Knowledge API call answers 500.
    Knowledge500 { every: u64 },
}

impl Fault {
    /// The kind's name as written on the command line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Push429 { .. } => "push-429",
            Self::Push500 { .. } => "push-500",
            Self::PushSlow { .. } => "push-slow",
            Self::Push403 { .. } => "push-403",
            Self::WsDrop { .. } => "ws-drop",
            Self::WsMalformed { .. } => "ws-malformed",
            Self::WsDuplicate { .. } => "ws-duplicate",
            Self::TokenExpire { .. } => "token-expire",
            Self::SocketClosing { .. } => "socket-closing",
            Self::HeartbeatStop { .. } => "heartbeat-stop",
            Self::Analytics403 => "analytics-403",
            Self::Analytics500 { .. } => "analytics-500",
            Self::Rest429 { .. } => "rest-429",
            Self::Rest503 { .. } => "rest-503",
            Self::Knowledge403 { .. } => "knowledge-403",
            Self::Knowledge429 { .. } => "knowledge-429",
            Self::Knowledge500 { .. } => "knowledge-500",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// The kinds `--fault` accepts, for error messages.
pub const KINDS: &str = "push-429, push-500, push-slow, push-403, ws-drop, ws-malformed, ws-duplicate, \
                         token-expire, socket-closing, heartbeat-stop, analytics-403, \
                         analytics-500, rest-429, rest-503, knowledge-403, knowledge-429, knowledge-500";

impl FromStr for Fault {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (kind, params) = spec.split_once(':').unwrap_or((spec, ""));
        let mut pairs = Vec::new();
        for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = p.split_once('=').ok_or_else(|| format!("`{p}` in `{spec}` is not key=value"))?;
            pairs.push((k.trim(), v.trim()));
        }
        let known = |allowed: &[&str]| -> Result<(), String> {
            match pairs.iter().find(|(k, _)| !allowed.contains(k)) {
                Some((k, _)) => {
                    Err(format!("fault {kind} has no parameter `{k}` (allowed: {})", allowed.join(", ")))
                }
                None => Ok(()),
            }
        };
        let num = |key: &str, default: Option<f64>| -> Result<f64, String> {
            match pairs.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("fault {kind}: `{key}={v}` is not a non-negative number")),
                None => default.ok_or_else(|| format!("fault {kind} needs `{key}=...`")),
            }
        };
        let every = || -> Result<u64, String> {
            let n = num("every", Some(1.0))?;
            if n < 1.0 || n.fract() != 0.0 {
                return Err(format!("fault {kind}: `every` must be a whole number of at least 1"));
            }
            Ok(n as u64)
        };
        let secs_of = |key: &str, v: f64| -> Result<Duration, String> {
            crate::duration::from_secs_f64(v).ok_or_else(|| format!("fault {kind}: `{key}` is too large"))
        };
        let secs = |key: &str| -> Result<Duration, String> { secs_of(key, num(key, None)?) };
        let fault = match kind {
            "push-429" | "rest-429" => {
                known(&["every", "retry_after"])?;
                let retry_after_s = pairs
                    .iter()
                    .any(|(k, _)| *k == "retry_after")
                    .then(|| num("retry_after", None))
                    .transpose()?;
                let every = every()?;
                if kind == "push-429" {
                    Self::Push429 { every, retry_after_s }
                } else {
                    Self::Rest429 { every, retry_after_s }
                }
            }
            "rest-503" => known(&["every"]).and_then(|()| Ok(Self::Rest503 { every: every()? }))?,
            "push-500" => known(&["every"]).and_then(|()| Ok(Self::Push500 { every: every()? }))?,
            "push-403" => known(&["every"]).and_then(|()| Ok(Self::Push403 { every: every()? }))?,
            "push-slow" => {
                known(&["every", "delay_ms"])?;
                Self::PushSlow {
                    every: every()?,
                    delay: secs_of("delay_ms", num("delay_ms", None)? / 1000.0)?,
                }
            }
            "ws-drop" => known(&["every"]).and_then(|()| Ok(Self::WsDrop { every: every()? }))?,
            "ws-malformed" => known(&["every"]).and_then(|()| Ok(Self::WsMalformed { every: every()? }))?,
            "ws-duplicate" => known(&["every"]).and_then(|()| Ok(Self::WsDuplicate { every: every()? }))?,
            "socket-closing" => {
                known(&["every"]).and_then(|()| Ok(Self::SocketClosing { every: every()? }))?
            }
            "token-expire" => {
                known(&["after_s"]).and_then(|()| Ok(Self::TokenExpire { after: secs("after_s")? }))?
            }
            "heartbeat-stop" => {
                known(&["after_s"]).and_then(|()| Ok(Self::HeartbeatStop { after: secs("after_s")? }))?
            }
            "analytics-403" => known(&[]).map(|()| Self::Analytics403)?,
            "analytics-500" => known(&["every"]).and_then(|()| Ok(Self::Analytics500 { every: every()? }))?,
            "knowledge-403" => {
                known(&["on"])?;
                let documents_only = match pairs.iter().find(|(k, _)| *k == "on").map(|(_, v)| *v) {
                    None | Some("all") => false,
                    Some("documents") => true,
                    Some(other) => {
                        return Err(format!("fault knowledge-403: `on={other}` (expected all or documents)"));
                    }
                };
                Self::Knowledge403 { documents_only }
            }
            "knowledge-429" => {
                known(&["every", "retry_after"])?;
                Self::Knowledge429 { every: every()?, retry_after_s: num("retry_after", Some(1.0))? }
            }
            "knowledge-500" => known(&["every"]).and_then(|()| Ok(Self::Knowledge500 { every: every()? }))?,
            other => return Err(format!("unknown fault `{other}` (known: {KINDS})")),
        };
        Ok(fault)
    }
}

/// Counts events of one kind and says when the Nth comes round.
#[derive(Debug, Default)]
pub struct Every(AtomicU64);

impl Every {
    /// Counts one event; true on every `n`th.
    pub fn tick(&self, n: u64) -> bool {
        let count = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        n > 0 && count.is_multiple_of(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_their_parameters() {
        assert_eq!(
            "push-429:every=3,retry_after=1".parse(),
            Ok(Fault::Push429 { every: 3, retry_after_s: Some(1.0) })
        );
        assert_eq!("push-429".parse(), Ok(Fault::Push429 { every: 1, retry_after_s: None }));
        assert_eq!(
            "push-slow:every=2,delay_ms=1500".parse(),
            Ok(Fault::PushSlow { every: 2, delay: Duration::from_millis(1500) })
        );
        assert_eq!("ws-drop:every=40".parse(), Ok(Fault::WsDrop { every: 40 }));
        assert_eq!("analytics-403".parse(), Ok(Fault::Analytics403));
        assert_eq!("analytics-500:every=2".parse(), Ok(Fault::Analytics500 { every: 2 }));
        assert_eq!("knowledge-403".parse(), Ok(Fault::Knowledge403 { documents_only: false }));
        assert_eq!("knowledge-403:on=documents".parse(), Ok(Fault::Knowledge403 { documents_only: true }));
        assert_eq!(
            "knowledge-429:every=2,retry_after=0.1".parse(),
            Ok(Fault::Knowledge429 { every: 2, retry_after_s: 0.1 })
        );
        assert_eq!(
            "rest-429:every=2,retry_after=0.5".parse(),
            Ok(Fault::Rest429 { every: 2, retry_after_s: Some(0.5) })
        );
        assert_eq!("rest-503:every=3".parse(), Ok(Fault::Rest503 { every: 3 }));
        assert_eq!(
            "token-expire:after_s=2.5".parse(),
            Ok(Fault::TokenExpire { after: Duration::from_millis(2500) })
        );
        assert_eq!(
            "heartbeat-stop:after_s=1".parse(),
            Ok(Fault::HeartbeatStop { after: Duration::from_secs(1) })
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Fault>().unwrap_err();
        assert!(err("push-999").contains("unknown fault `push-999`"));
        assert!(err("ws-drop:every=0").contains("at least 1"));
        assert!(err("ws-drop:every=x").contains("not a non-negative number"));
        assert!(err("ws-drop:often=2").contains("no parameter `often`"));
        assert!(err("token-expire").contains("needs `after_s=...`"));
        assert!(err("push-500:every").contains("not key=value"));
        assert!(err("token-expire:after_s=1e30").contains("too large"));
        assert!(err("heartbeat-stop:after_s=1e300").contains("too large"));
        assert!(err("push-slow:delay_ms=1e40").contains("too large"));
        assert!(err("push-429:retry_after=1e400").contains("not a non-negative number"));
    }

    #[test]
    fn every_fires_on_each_nth_event() {
        let e = Every::default();
        let fired: Vec<bool> = (0..6).map(|_| e.tick(3)).collect();
        assert_eq!(fired, vec![false, false, true, false, false, true]);
    }
}
