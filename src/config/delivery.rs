//! `[delivery]` and `[ledger]`: where decided suggestions go, and where the
//! durable record of suggestions, decisions and deliveries is kept.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::Sink;

/// `[delivery]`: the sinks every decided suggestion fans out to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub sinks: Vec<Sink>,
    /// Prefix of the participant-attribute keys the `genesys-attributes`
    /// sink writes.
    pub attributes_prefix: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self { sinks: vec![Sink::Webhook], attributes_prefix: "agentAssist.".into() }
    }
}

impl DeliveryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.sinks.is_empty() {
            return Err("`sinks` names no sink: nothing would reach an agent".into());
        }
        let mut seen = self.sinks.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.sinks.len() {
            return Err("`sinks` names a sink twice".into());
        }
        let p = &self.attributes_prefix;
        if p.is_empty() || p.len() > 64 || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("`attributes_prefix` must be 1–64 characters without spaces".into());
        }
        Ok(())
    }
}

/// `[ledger]`: the crash-safe store of delivery state in the data dir.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Keep one. Without it a restart forgets what was suggested and sent.
    pub enabled: bool,
    /// Where; empty means `<data dir>/ledger.redb`.
    pub path: Option<PathBuf>,
    /// Calls that ended longer ago than this are pruned at start, in days.
    pub retention_days: u32,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { enabled: true, path: None, retention_days: 7 }
    }
}

impl LedgerConfig {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }
}
