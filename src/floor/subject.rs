//! Subject and key names on the floor. Ids come from the network (queue and
//! conversation ids) and must not be able to change a subject's shape: a
//! `.` would add a token and `*`/`>` would turn a publish into a wildcard.
//! Each id becomes one token of letters, digits and `-`, everything else
//! hex-escaped as `=XX` per byte (`=` is legal in subjects and KV keys, and
//! `_` is escaped too so the bare `_` can mean "none").

use std::fmt::Write;

/// The token standing for "no queue" / "no conversation".
pub const NONE: &str = "_";

/// One safe token for an id.
pub fn token(id: &str) -> String {
    if id.is_empty() {
        return "=".into();
    }
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "={b:02X}");
        }
    }
    out
}

/// The id a token was made from (`None` for [`NONE`] or a malformed token).
pub fn id(token: &str) -> Option<String> {
    if token == NONE {
        return None;
    }
    if token == "=" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Subject of one event: `<prefix>.v1.<queue>.<conversation>.<kind>`.
pub fn event(prefix: &str, queue: Option<&str>, conversation: Option<&str>, kind: &str) -> String {
    let t = |x: Option<&str>| x.map_or_else(|| NONE.to_string(), token);
    format!("{prefix}.v1.{}.{}.{}", t(queue), t(conversation), token(kind))
}

/// Every event subject (the stream's subjects, and a console's filter).
pub fn all_events(prefix: &str) -> String {
    format!("{prefix}.v1.*.*.*")
}

/// Where the owner of `queue` takes commands.
pub fn command(prefix: &str, queue: &str) -> String {
    format!("{prefix}.v1.cmd.{}", token(queue))
}

/// Every queue's command subject (a worker's subscription).
pub fn all_commands(prefix: &str) -> String {
    format!("{prefix}.v1.cmd.*")
}

/// Where a page's acknowledgement or feedback for a call goes (its owner
/// answers).
pub fn agent(prefix: &str, conversation: &str) -> String {
    format!("{prefix}.v1.agent.{}", token(conversation))
}

/// Every call's agent subject (a worker's subscription).
pub fn all_agent(prefix: &str) -> String {
    format!("{prefix}.v1.agent.*")
}

/// The widget's feed events of every call, in the stream.
pub fn all_widget(prefix: &str) -> String {
    format!("{prefix}.v1.*.*.widget")
}

/// The queue and conversation of an event subject.
pub fn parse_event(subject: &str) -> Option<(Option<String>, Option<String>, String)> {
    let mut parts = subject.split('.');
    let (_prefix, v, q, c, k) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if v != "v1" || parts.next().is_some() {
        return None;
    }
    Some((id(q), id(c), id(k)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_a_subjects_shape() {
        for id_ in ["q.1", "a*b", ">", "with space", "_", "", "é-ü", "=3D", "plain-uuid-1234"] {
            let t = token(id_);
            assert!(!t.contains(['.', '*', '>', ' ']), "{t}");
            assert_eq!(id(&t).as_deref(), Some(id_), "{id_} → {t}");
        }
        let s = event("aa", Some("q.*"), Some("c>1"), "suggestion");
        assert_eq!(s.split('.').count(), 5, "{s}");
        let (q, c, k) = parse_event(&s).unwrap();
        assert_eq!((q.as_deref(), c.as_deref(), k.as_str()), (Some("q.*"), Some("c>1"), "suggestion"));
        assert_eq!(parse_event(&event("aa", None, None, "metrics")).unwrap().0, None);
        assert!(parse_event("aa.v1.cmd.q").is_none());
        assert_eq!(id("=G1"), None);
    }
}
