//! What the engine does when the knowledge base is reloaded while calls
//! run: it notes the index version (every search record says which index
//! answered), marks suggestions of changed articles `changed` (what was
//! shown is the old text), withdraws open suggestions of deleted articles
//! and refuses to send a deleted article at all (approvals, retries, the
//! palette), searches live calls again when their matches are affected (or
//! a new article might match) so the matches show the new text,
//! and reports the reload (status bar, push log, audit / headless line).
//! A failed rebuild is reported the same ways; nothing else changes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::msg::{Effect, KbReload, Record};
use super::policy::Mode;
use super::push::{PushLogEntry, PushStatus};
use super::suggestion::SuggestionState;
use super::{Actor, Engine, schedule_search};
use crate::domain::Sink;

/// The engine's view of the knowledge base.
#[derive(Debug)]
pub struct KbState {
    /// Version of the index answering searches (1 until the first reload).
    pub version: u64,
    /// Articles deleted by a reload (and not added back since).
    deleted: HashSet<String>,
    /// When each article last changed with a reload.
    changed_at: HashMap<String, Instant>,
    /// The last reload or failure, for the status bar.
    pub last: Option<KbStatus>,
}

impl Default for KbState {
    fn default() -> Self {
        Self { version: 1, deleted: HashSet::new(), changed_at: HashMap::new(), last: None }
    }
}

/// The latest reload outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbStatus {
    pub at: Instant,
    pub ok: bool,
    /// "KB reloaded: +2 −1 ~3 articles (0.4 s)", or why it failed.
    pub text: String,
}

/// The status line of a reload: "KB reloaded: +2 −1 ~3 articles (0.4 s)".
pub fn summary(r: &KbReload) -> String {
    format!(
        "KB reloaded: +{} −{} ~{} articles ({:.1} s)",
        r.added.len(),
        r.removed.len(),
        r.changed.len(),
        r.took.as_secs_f64()
    )
}

impl Engine {
    pub(super) fn on_kb_reloaded(&mut self, r: KbReload, now: Instant, fx: &mut Vec<Effect>) {
        self.kb.version = r.version;
        for id in &r.added {
            self.kb.deleted.remove(id);
        }
        self.kb.deleted.extend(r.removed.iter().cloned());
        for id in &r.changed {
            self.kb.changed_at.insert(id.clone(), now);
        }
        let changed: HashSet<&str> = r.changed.iter().map(String::as_str).collect();
        let removed: HashSet<&str> = r.removed.iter().map(String::as_str).collect();
        let (policy, paused_all) = (self.policy.clone(), self.paused_all);
        let mut marked = 0;
        for c in self.conversations.values_mut() {
            let mut touched = false;
            for s in &mut c.suggestions {
                if changed.contains(s.article_id.as_str()) && !s.article_changed {
                    s.article_changed = true;
                    marked += 1;
                }
                if removed.contains(s.article_id.as_str()) && s.state.is_open() {
                    s.set(SuggestionState::Superseded, now);
                    touched = true;
                }
            }
            if touched {
                self.touched.insert(c.id.clone());
            }
            // Search again when the matches on screen quote a changed or
            // deleted article, or a new article might match: not for every
            // edit anywhere in the KB (that would double the search load
            // while an author works).
            let affected = !r.added.is_empty()
                || c.matches.iter().any(|h| {
                    changed.contains(h.article_id.as_str()) || removed.contains(h.article_id.as_str())
                });
            let live = c.ended_at.is_none() && !c.paused && !paused_all;
            if affected && live && !c.window_text.is_empty() && c.effective_mode(policy.mode) != Mode::Off {
                c.window_seq += 1;
                // No transcript event caused this search: it stays out of
                // the event-to-search and event-to-push latencies.
                c.window_event_at = None;
                schedule_search(c, policy.debounce, now);
            }
        }
        let text = summary(&r);
        self.kb_status(now, true, text.clone());
        fx.push(Effect::Record(Record::KbReloaded {
            version: r.version,
            took_ms: u64::try_from(r.took.as_millis()).unwrap_or(u64::MAX),
            articles: r.articles,
            added: r.added,
            removed: r.removed,
            changed: r.changed,
            marked_changed: marked,
        }));
    }

    pub(super) fn on_kb_reload_failed(&mut self, reason: String, now: Instant, fx: &mut Vec<Effect>) {
        self.kb_status(now, false, format!("KB reload failed, old index kept: {reason}"));
        fx.push(Effect::Record(Record::KbReloadFailed { reason }));
    }

    fn kb_status(&mut self, now: Instant, ok: bool, text: String) {
        self.notice(now, text.clone());
        self.log(PushLogEntry {
            at: now,
            suggestion_id: String::new(),
            conversation_id: String::new(),
            article_id: String::new(),
            title: String::new(),
            by: Actor::Auto,
            // Not a push: the log shows the line on its own.
            sink: Sink::Webhook,
            status: PushStatus::Kb { ok, text: text.clone() },
        });
        self.kb.last = Some(KbStatus { at: now, ok, text });
    }

    /// Why an article may not be sent, if it was deleted from the KB.
    pub(super) fn deleted_article(&self, article_id: &str) -> Option<String> {
        self.kb
            .deleted
            .contains(article_id)
            .then(|| format!("not sent: article {article_id} was deleted from the knowledge base"))
    }

    /// Refuses an operator's command: a notice on screen, a line in the
    /// audit log (and the headless output, where there is no screen).
    pub(super) fn refuse(&mut self, now: Instant, why: String, fx: &mut Vec<Effect>) {
        self.notice(now, why.clone());
        fx.push(Effect::Record(Record::Refused { message: why }));
    }

    /// The version of the index answering searches.
    pub fn kb_version(&self) -> u64 {
        self.kb.version
    }

    /// The latest reload outcome, for the status bar.
    pub fn kb_status_line(&self) -> Option<&KbStatus> {
        self.kb.last.as_ref()
    }

    /// Whether `article_id` changed with a reload after `since` (a push log
    /// line about an older text).
    pub fn article_changed_since(&self, article_id: &str, since: Instant) -> bool {
        self.kb.changed_at.get(article_id).is_some_and(|t| *t > since)
    }

    /// Whether `article_id` was deleted by a reload.
    pub fn article_deleted(&self, article_id: &str) -> bool {
        self.kb.deleted.contains(article_id)
    }
}

/// How long a successful reload stays on the status bar.
pub const SHOW_RELOAD_FOR: Duration = Duration::from_secs(30);

#[cfg(test)]
#[path = "tests_kb_reload.rs"]
mod tests;
