//! Configuration: built-in defaults (documented in
//! `assets/default-config.toml`), overridden by the user's TOML file, then
//! by `GENESYS_*` environment variables, then by command-line flags.
//!
//! Unknown keys and bad values are errors naming the key (and, for the
//! file, the line). Secrets are held as [`Secret`] and never printed.

pub mod delivery;
pub mod keymap;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::Policy;
use crate::kb::{HnswParams, IndexKind};
use crate::net::{Dialect, Endpoint, Secret};

/// The documented default configuration, shipped in the binary.
pub const DEFAULT_TOML: &str = include_str!("../assets/default-config.toml");

/// Everything configurable.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub genesys: GenesysConfig,
    pub kb: KbConfig,
    pub policy: Policy,
    pub delivery: delivery::DeliveryConfig,
    pub ledger: delivery::LedgerConfig,
    pub keys: keymap::KeysConfig,
    pub widget: crate::widget::WidgetConfig,
    /// Floor mode only (`agent-assist worker`, `console --nats`).
    pub nats: crate::floor::NatsConfig,
}

/// `[genesys]`: where the org is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenesysConfig {
    pub dialect: Dialect,
    pub region: String,
    pub api_base: String,
    pub login_base: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub queues: Vec<String>,
    pub users: Vec<String>,
    pub push_url: String,
    pub push_timeout_ms: u64,
    pub push_max_attempts: u32,
    pub ping_after_ms: u64,
    pub pong_timeout_ms: u64,
    pub max_topics_per_channel: usize,
}

impl Default for GenesysConfig {
    fn default() -> Self {
        Self {
            dialect: Dialect::Notifications,
            region: "mypurecloud.com".into(),
            api_base: String::new(),
            login_base: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            queues: Vec::new(),
            users: Vec::new(),
            push_url: crate::net::push::DEFAULT_URL_TEMPLATE.into(),
            push_timeout_ms: 10_000,
            push_max_attempts: 5,
            ping_after_ms: 45_000,
            pong_timeout_ms: 15_000,
            max_topics_per_channel: 1000,
        }
    }
}

/// `[kb]`: the knowledge base and its index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KbConfig {
    pub paths: Vec<PathBuf>,
    pub index: IndexKind,
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    pub hnsw_ef_search: u32,
    /// How often a `genesys:ID` source is synced while the console runs
    /// (humantime, e.g. `15m`).
    pub sync_interval: String,
    /// Sync draft documents of `genesys:ID` sources too.
    pub genesys_include_drafts: bool,
    /// Only documents with one of these labels (names or ids); all when empty.
    pub genesys_labels: Vec<String>,
    /// The embedding model (a name from `kb::embed::models::MODELS`).
    pub model: String,
    /// ONNX Runtime intra-op threads for the live search model; 0 uses
    /// every core. Several workers on one machine want cores ÷ workers.
    pub threads: usize,
}

impl Default for KbConfig {
    fn default() -> Self {
        let h = HnswParams::default();
        Self {
            paths: Vec::new(),
            index: IndexKind::Flat,
            hnsw_m: h.m,
            hnsw_ef_construction: h.ef_construction,
            hnsw_ef_search: h.ef_search,
            sync_interval: "15m".into(),
            genesys_include_drafts: false,
            genesys_labels: Vec::new(),
            model: crate::kb::embed::models::DEFAULT_MODEL.into(),
            threads: 0,
        }
    }
}

impl KbConfig {
    pub fn hnsw(&self) -> HnswParams {
        HnswParams {
            m: self.hnsw_m,
            ef_construction: self.hnsw_ef_construction,
            ef_search: self.hnsw_ef_search,
        }
    }

    /// The model's intra-op threads: `None` for every core.
    pub fn model_threads(&self) -> Option<usize> {
        (self.threads > 0).then_some(self.threads)
    }

    /// `sync_interval` as a duration.
    pub fn sync_every(&self) -> Result<Duration, ConfigError> {
        humantime::parse_duration(self.sync_interval.trim())
            .ok()
            .filter(|d| *d >= Duration::from_secs(1))
            .ok_or_else(|| ConfigError::Invalid {
                key: "kb.sync_interval".into(),
                message: format!("`{}` is not a duration of at least 1 s (e.g. 15m)", self.sync_interval),
            })
    }

    /// The configured sources, or the bundled sample knowledge base.
    pub fn sources(&self) -> Vec<PathBuf> {
        if self.paths.is_empty() { vec![crate::paths::bundled("kb")] } else { self.paths.clone() }
    }
}

/// A configuration problem, naming the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("{0}")]
    Missing(String),
}

/// Region names from the Genesys SDKs, mapped to their domains.
const REGIONS: [(&str, &str); 17] = [
    ("us_east_1", "mypurecloud.com"),
    ("eu_west_1", "mypurecloud.ie"),
    ("ap_southeast_2", "mypurecloud.com.au"),
    ("ap_northeast_1", "mypurecloud.jp"),
    ("eu_central_1", "mypurecloud.de"),
    ("us_west_2", "usw2.pure.cloud"),
    ("ca_central_1", "cac1.pure.cloud"),
    ("ap_northeast_2", "apne2.pure.cloud"),
    ("eu_west_2", "euw2.pure.cloud"),
    ("ap_south_1", "aps1.pure.cloud"),
    ("us_east_2", "use2.us-gov-pure.cloud"),
    ("sa_east_1", "sae1.pure.cloud"),
    ("me_central_1", "mec1.pure.cloud"),
    ("ap_northeast_3", "apne3.pure.cloud"),
    ("eu_central_2", "euc2.pure.cloud"),
    ("mx_central_1", "mxc1.pure.cloud"),
    ("ap_southeast_1", "apse1.pure.cloud"),
];

/// A region domain from a domain or a region name.
pub fn region_domain(region: &str) -> Result<String, ConfigError> {
    let r = region.trim().trim_start_matches("api.").trim_start_matches("login.");
    if r.contains('.') {
        return Ok(r.to_string());
    }
    let name = r.to_ascii_lowercase().replace('-', "_");
    REGIONS.iter().find(|(n, _)| *n == name).map(|(_, d)| (*d).to_string()).ok_or_else(|| {
        ConfigError::Invalid {
            key: "genesys.region".into(),
            message: format!(
                "unknown region `{region}` (give a domain like mypurecloud.com or a name like us_east_1)"
            ),
        }
    })
}

impl Config {
    /// Loads defaults, then `file` (if given it must exist; otherwise the
    /// user's default file is read when present), then the environment.
    pub fn load(
        file: Option<&Path>,
        default_file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(p) => Self::from_file(p)?,
            None if default_file.is_file() => Self::from_file(default_file)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses one TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
    }

    /// Applies `GENESYS_*` variables.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let g = &mut self.genesys;
        if let Some(v) = get("GENESYS_CLIENT_ID") {
            g.client_id = v;
        }
        if let Some(v) = get("GENESYS_CLIENT_SECRET") {
            g.client_secret = Secret::new(v);
        }
        if let Some(v) = get("GENESYS_REGION") {
            g.region = v;
        }
        if let Some(domain) = get("GENESYS_ORG_DOMAIN") {
            // The original design's variable: its base, its dialect.
            g.api_base = format!("https://{}", domain.trim_start_matches("https://").trim_end_matches('/'));
            g.dialect = Dialect::Tutorial;
        }
        if let Some(v) = get("GENESYS_API_BASE") {
            g.api_base = v;
        }
        if let Some(v) = get("GENESYS_LOGIN_BASE") {
            g.login_base = v;
        }
        Ok(())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate().map_err(|message| {
            let key = message.split('`').nth(1).unwrap_or("").to_string();
            ConfigError::Invalid { key: format!("policy.{key}"), message }
        })?;
        let g = &self.genesys;
        let invalid =
            |key: &str, message: &str| ConfigError::Invalid { key: key.into(), message: message.into() };
        self.delivery.validate().map_err(|m| invalid("delivery", &m))?;
        self.nats.validate().map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        for (key, url) in [("genesys.api_base", &g.api_base), ("genesys.login_base", &g.login_base)] {
            if !url.is_empty() && url::Url::parse(url).is_err() {
                return Err(invalid(key, &format!("`{url}` is not a URL")));
            }
        }
        if !g.push_url.contains("{conversationId}") {
            return Err(invalid("genesys.push_url", "must contain {conversationId}"));
        }
        if g.push_timeout_ms == 0 || g.push_max_attempts == 0 {
            return Err(invalid("genesys.push_timeout_ms", "push timeout and attempts must be at least 1"));
        }
        if g.ping_after_ms == 0 || g.pong_timeout_ms == 0 {
            return Err(invalid("genesys.ping_after_ms", "ping and pong timeouts must be positive"));
        }
        if !(1..=1000).contains(&g.max_topics_per_channel) {
            return Err(invalid(
                "genesys.max_topics_per_channel",
                "must be between 1 and 1000 (the Genesys limit)",
            ));
        }
        region_domain(&g.region)?;
        self.kb.sync_every()?;
        crate::kb::embed::models::by_name(&self.kb.model).map_err(|e| invalid("kb.model", &e.to_string()))?;
        self.keys.keymap().map_err(|message| invalid("keys", &message))?;
        self.widget
            .validate()
            .map_err(|e| ConfigError::Invalid { key: format!("widget.{}", e.key), message: e.message })?;
        Ok(())
    }

    /// The API base URL: configured, or `https://api.{region}`.
    pub fn api_base(&self) -> Result<String, ConfigError> {
        if !self.genesys.api_base.is_empty() {
            return Ok(self.genesys.api_base.trim_end_matches('/').to_string());
        }
        Ok(format!("https://api.{}", region_domain(&self.genesys.region)?))
    }

    /// The login base URL: configured, else derived from the API base the
    /// way the Genesys SDKs do (`//api.` → `//login.`), else the API base.
    pub fn login_base(&self) -> Result<String, ConfigError> {
        if !self.genesys.login_base.is_empty() {
            return Ok(self.genesys.login_base.trim_end_matches('/').to_string());
        }
        let api = self.api_base()?;
        Ok(if api.contains("//api.") { api.replacen("//api.", "//login.", 1) } else { api })
    }

    /// The endpoint to connect to; fails if credentials are missing.
    pub fn endpoint(&self) -> Result<Endpoint, ConfigError> {
        let g = &self.genesys;
        if g.client_id.is_empty() || g.client_secret.is_empty() {
            return Err(ConfigError::Missing(
                "no Genesys Cloud credentials: set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET \
                 (an OAuth client with the client-credentials grant)"
                    .into(),
            ));
        }
        Ok(Endpoint {
            dialect: g.dialect,
            api_base: self.api_base()?,
            login_base: self.login_base()?,
            client_id: g.client_id.clone(),
            client_secret: g.client_secret.clone(),
        })
    }

    /// The `[widget]` section with the Genesys API and login bases filled
    /// in from `[genesys]` (the page signs in there; the server asks
    /// `/api/v2/users/me` there).
    pub fn widget(&self) -> Result<crate::widget::WidgetConfig, ConfigError> {
        let mut w = self.widget.clone();
        w.api_base = self.api_base()?;
        w.login_base = self.login_base()?;
        Ok(w)
    }

    pub fn push_timeout(&self) -> Duration {
        Duration::from_millis(self.genesys.push_timeout_ms)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
