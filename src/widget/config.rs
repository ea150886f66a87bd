//! The `[widget]` config section: where the agent widget listens, how its
//! pages prove who they are, TLS, and how long it keeps what. Validated
//! here, so a bad setting is refused with the key's name before anything
//! listens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How an agent page proves it may see a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The agent's Genesys token (implicit grant), checked with
    /// `/api/v2/users/me` against the call's agent participants.
    #[default]
    Genesys,
    /// Anyone who can reach the port; allowed only on a loopback bind.
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Genesys => "genesys",
            Self::None => "none",
        }
    }
}

/// `[widget]`. `api_base` and `login_base` are not read from this section:
/// they come from `[genesys]` (see `Config::widget`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetConfig {
    pub bind: String,
    pub auth: AuthMode,
    pub client_id: String,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub self_signed: bool,
    pub session_ttl_s: u64,
    pub max_suggestions_per_call: usize,
    pub max_events_per_call: usize,
    pub ended_grace_s: u64,
    pub max_calls: usize,
    pub frame_ancestors: Vec<String>,
    /// Where `/api/v2/users/me` is asked (filled from `[genesys]`).
    #[serde(skip)]
    pub api_base: String,
    /// Where the page's implicit grant goes (filled from `[genesys]`).
    #[serde(skip)]
    pub login_base: String,
}

impl Default for WidgetConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            auth: AuthMode::Genesys,
            client_id: String::new(),
            cert: None,
            key: None,
            self_signed: false,
            session_ttl_s: 3600,
            max_suggestions_per_call: 50,
            max_events_per_call: 500,
            ended_grace_s: 600,
            max_calls: 10_000,
            frame_ancestors: Vec::new(),
            api_base: String::new(),
            login_base: String::new(),
        }
    }
}

/// A `[widget]` setting that cannot work, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config `widget.{key}`: {message}")]
pub struct WidgetConfigError {
    pub key: &'static str,
    pub message: String,
}

impl WidgetConfig {
    /// The bind address, parsed.
    pub fn bind_addr(&self) -> Result<SocketAddr, WidgetConfigError> {
        self.bind.trim().parse().map_err(|_| WidgetConfigError {
            key: "bind",
            message: format!("`{}` is not an address like 127.0.0.1:0 or 0.0.0.0:8443", self.bind),
        })
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_s)
    }

    pub fn ended_grace(&self) -> Duration {
        Duration::from_secs(self.ended_grace_s)
    }

    /// Whether pages are served over TLS.
    pub fn tls(&self) -> bool {
        self.self_signed || self.cert.is_some()
    }

    /// Everything [`Self::validate`] checks, plus what only matters once the
    /// widget is served: `auth = "genesys"` needs a `client_id`.
    pub fn check_servable(&self) -> Result<(), WidgetConfigError> {
        self.validate()?;
        if self.auth == AuthMode::Genesys && self.client_id.trim().is_empty() {
            return Err(WidgetConfigError {
                key: "client_id",
                message: "auth = \"genesys\" needs the id of an implicit-grant OAuth client for the \
                          agent page (or auth = \"none\" on a loopback bind)"
                    .into(),
            });
        }
        Ok(())
    }

    /// Checks what parses but cannot work, whether or not the widget is
    /// served (so `auth = "none"` off loopback is refused at load).
    /// `api_base`/`login_base` are checked only when filled.
    pub fn validate(&self) -> Result<(), WidgetConfigError> {
        let bad = |key: &'static str, message: &str| WidgetConfigError { key, message: message.into() };
        let addr = self.bind_addr()?;
        if self.auth == AuthMode::None && !addr.ip().is_loopback() {
            return Err(bad(
                "auth",
                &format!(
                    "\"none\" lets anyone who reaches the port read every call's suggestions, so it is \
                     allowed only on a loopback bind, not {addr}; use auth = \"genesys\" or bind 127.0.0.1"
                ),
            ));
        }
        match (&self.cert, &self.key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad("cert", "give both `cert` and `key` (PEM files), or neither"));
            }
            (Some(_), Some(_)) if self.self_signed => {
                return Err(bad(
                    "self_signed",
                    "choose a certificate (`cert`/`key`) or `self_signed`, not both",
                ));
            }
            _ => {}
        }
        if self.session_ttl_s == 0 {
            return Err(bad("session_ttl_s", "must be at least 1 second"));
        }
        if self.max_suggestions_per_call == 0 || self.max_events_per_call < self.max_suggestions_per_call {
            return Err(bad(
                "max_events_per_call",
                "max_suggestions_per_call must be at least 1 and max_events_per_call at least as large",
            ));
        }
        if self.max_calls == 0 {
            return Err(bad("max_calls", "must be at least 1"));
        }
        if let Some(a) =
            self.frame_ancestors.iter().find(|a| a.contains([';', ',', '\'', '"', '\n']) || a.is_empty())
        {
            return Err(bad(
                "frame_ancestors",
                &format!("`{a}` is not a CSP source like https://*.mypurecloud.com"),
            ));
        }
        for (key, url) in [("api_base", &self.api_base), ("login_base", &self.login_base)] {
            if self.auth == AuthMode::Genesys && !url.is_empty() && url::Url::parse(url).is_err() {
                return Err(bad(key, &format!("`{url}` is not a URL")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_refused_off_loopback_and_genesys_needs_a_client() {
        let open = WidgetConfig { auth: AuthMode::None, bind: "0.0.0.0:8443".into(), ..Default::default() };
        let e = open.validate().unwrap_err();
        assert_eq!(e.key, "auth");
        assert!(e.to_string().contains("loopback"), "{e}");
        let local = WidgetConfig { auth: AuthMode::None, ..Default::default() };
        assert_eq!(local.validate(), Ok(()));
        let v6 = WidgetConfig { auth: AuthMode::None, bind: "[::1]:0".into(), ..Default::default() };
        assert_eq!(v6.validate(), Ok(()));
        assert_eq!(WidgetConfig::default().validate(), Ok(()));
        assert_eq!(WidgetConfig::default().check_servable().unwrap_err().key, "client_id");
        let g = WidgetConfig { client_id: "abc".into(), bind: "0.0.0.0:0".into(), ..Default::default() };
        assert_eq!(g.check_servable(), Ok(()));
    }

    #[test]
    fn tls_files_come_in_pairs_and_bad_values_name_their_key() {
        let base = WidgetConfig { auth: AuthMode::None, ..Default::default() };
        let half = WidgetConfig { cert: Some("c.pem".into()), ..base.clone() };
        assert_eq!(half.validate().unwrap_err().key, "cert");
        let both =
            WidgetConfig { cert: Some("c".into()), key: Some("k".into()), self_signed: true, ..base.clone() };
        assert_eq!(both.validate().unwrap_err().key, "self_signed");
        let bind = WidgetConfig { bind: "localhost".into(), ..base.clone() };
        assert_eq!(bind.validate().unwrap_err().key, "bind");
        let fa = WidgetConfig { frame_ancestors: vec!["x; script-src *".into()], ..base };
        assert_eq!(fa.validate().unwrap_err().key, "frame_ancestors");
    }

    #[test]
    fn command_line_flags_set_the_port_and_the_self_signed_certificate() {
        let mut w = WidgetConfig {
            bind: "0.0.0.0:8443".into(),
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            ..Default::default()
        };
        let args = crate::cli::WidgetArgs { widget_port: Some(9443), widget_self_signed: true };
        args.apply(&mut w).unwrap();
        assert_eq!(w.bind, "0.0.0.0:9443");
        assert!(w.self_signed && w.cert.is_none() && w.key.is_none());
        let mut bad = WidgetConfig { bind: "nowhere".into(), ..Default::default() };
        assert_eq!(args.apply(&mut bad).unwrap_err().key, "bind");
    }
}
