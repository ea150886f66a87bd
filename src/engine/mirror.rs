//! Following a floor: an engine that decides nothing and only mirrors what
//! the floor's workers report. A floor console keeps one of these as its
//! view model and feeds it the [`Record`]s read from the stream (the lines
//! the workers' engines emitted), so the dashboard draws a floor exactly as
//! it draws a local engine. Nothing here emits effects: the decisions were
//! made by the workers, and a console never pushes.
//!
//! The stream says less than a worker's engine knows (no passages, no need
//! verdicts, no re-classification records), so the mirror re-derives what
//! it can the way the engine does: matches re-classify the open
//! suggestions against the push threshold and supersede the unlisted ones,
//! and the query window is the final utterances the search's query holds.

mod delivery;

use std::time::{Duration, Instant};

use super::kb_reload::KbStatus;
use super::msg::{Actor, ArticleRef, Record, ScoredArticle};
use super::policy::{Knob, Mode};
use super::push::{PushLogEntry, PushStatus};
use super::suggestion::{DeliveryState, Origin, Suggestion, SuggestionState};
use super::{CANDIDATE_WINDOW, Conversation, Engine};
use crate::domain::{Hit, Sink, TranscriptEvent};

/// A lookup of an article's title and text in the console's copy of the
/// knowledge base (the stream names articles by id only).
pub type ArticleLookup<'a> = &'a dyn Fn(&str) -> Option<ArticleRef>;

impl Engine {
    /// Applies one record a floor worker published; `at` is when it was
    /// written (its `ts`, on this process's clock).
    pub fn observe(&mut self, rec: Record, at: Instant, article: ArticleLookup) {
        match rec {
            Record::ConversationStarted { conversation_id, queue_id } => {
                let c = self.mirror_conversation(&conversation_id, at);
                if c.queue_id.is_none() {
                    c.queue_id = queue_id;
                }
            }
            Record::ConversationEnded { conversation_id } => {
                if let Some(c) = self.conversations.get_mut(&conversation_id).filter(|c| c.ended_at.is_none())
                {
                    c.ended_at = Some(at);
                    for s in c.suggestions.iter_mut().filter(|s| s.state.is_open()) {
                        s.set(SuggestionState::Superseded, at);
                    }
                }
            }
            Record::Transcript { conversation_id, utterance_id, speaker, text, is_final } => {
                let c = self.mirror_conversation(&conversation_id, at);
                let ev = TranscriptEvent {
                    conversation_id,
                    utterance_id,
                    speaker,
                    text,
                    is_final,
                    offset_ms: None,
                };
                c.upsert(&ev, at);
                if is_final {
                    self.metrics.utterances += 1;
                }
            }
            Record::Search { conversation_id, query, results, stale, .. } => {
                self.metrics.searches += 1;
                if stale {
                    self.metrics.stale_results += 1;
                } else {
                    self.mirror_matches(&conversation_id, query, &results, at, article);
                }
            }
            Record::Suggestion { suggestion_id, conversation_id, article_id, title, score, state } => {
                let known = article(&article_id);
                let c = self.mirror_conversation(&conversation_id, at);
                if c.suggestions.iter().any(|s| s.id == suggestion_id) {
                    return;
                }
                let text = c
                    .matches
                    .iter()
                    .find(|h| h.article_id == article_id && !h.text.is_empty())
                    .map(|h| h.text.clone())
                    .or_else(|| known.map(|a| a.content))
                    .unwrap_or_default();
                let mut s =
                    Suggestion::new(suggestion_id, &conversation_id, &article_id, &title, &text, score, at);
                s.url = c.matches.iter().find(|h| h.article_id == article_id).and_then(|h| h.url.clone());
                s.event_at = c.utterances.iter().rev().find(|u| u.is_final).map(|u| u.at);
                if state == "queued" {
                    s.set(SuggestionState::Queued, at);
                }
                c.suggestions.push(s);
                c.trim_suggestions();
                self.metrics.suggestions += 1;
            }
            Record::Decision { suggestion_id, conversation_id, action, by, edited, .. } => {
                self.mirror_decision(&conversation_id, &suggestion_id, action, by, edited, at);
            }
            Record::PushAttempt(a) => {
                if let Some(s) = self.mirror_suggestion(&a.suggestion_id) {
                    s.attempts = a.attempt;
                    s.retry_note = Some(format!("{}: {}", a.sink, a.reason));
                    if let Some(d) = s.delivery_mut(a.sink) {
                        d.state =
                            DeliveryState::Pending { attempts: a.attempt, note: Some(a.reason.clone()) };
                    }
                }
                let status = PushStatus::Retrying { attempt: a.attempt, reason: a.reason };
                self.mirror_log(&a.suggestion_id, a.sink, status, at);
            }
            Record::Push {
                suggestion_id,
                conversation_id,
                sink,
                ok,
                status,
                attempts,
                latency_ms,
                error,
                ..
            } => {
                let state = match error {
                    Some(error) if !ok => DeliveryState::Failed { error, attempts },
                    _ => DeliveryState::Delivered { status, attempts, latency_ms },
                };
                self.mirror_push(&conversation_id, &suggestion_id, sink, state, at);
            }
            Record::Connection(state) => {
                self.connection = state;
                self.connection_since = Some(at);
            }
            Record::Warning { message } | Record::Refused { message } => self.notice(at, message),
            Record::Setting { knob, value } => self.mirror_setting(&knob, &value, at),
            Record::Acknowledged { suggestion_id, .. } => {
                let Some(s) = self.mirror_suggestion(&suggestion_id).filter(|s| !s.acknowledged) else {
                    return;
                };
                s.acknowledged = true;
                let article = s.article_id.clone();
                self.feedback.entry(article).or_default().shown += 1;
                if let Some(e) = self.log_entry(&suggestion_id, Sink::Widget)
                    && let PushStatus::Pushed { acknowledged, .. } = &mut e.status
                {
                    *acknowledged = true;
                }
            }
            Record::AgentFeedback { suggestion_id, feedback, .. } => {
                let Some(s) = self.mirror_suggestion(&suggestion_id) else { return };
                let previous = s.feedback.replace(feedback);
                let article = s.article_id.clone();
                let counts = self.feedback.entry(article).or_default();
                if let Some(p) = previous {
                    counts.remove(p);
                }
                counts.add(feedback);
                self.mirror_log(&suggestion_id, Sink::Widget, PushStatus::Agent { feedback }, at);
            }
            Record::Ledger { ok, message } => {
                self.ledger_ok = ok;
                self.notice(at, message);
            }
            Record::KbReloaded { version, added, removed, changed, took_ms, articles, .. } => {
                self.kb.version = version;
                let r = super::KbReload {
                    version,
                    added,
                    removed,
                    changed,
                    took: Duration::from_millis(took_ms),
                    articles,
                };
                self.mirror_kb(at, true, super::kb_reload::summary(&r));
            }
            Record::KbReloadFailed { reason } => {
                self.mirror_kb(at, false, format!("KB reload failed, old index kept: {reason}"));
            }
            Record::Restored { conversations, redelivered, .. } => {
                let text = format!("a worker took over {conversations} calls ({redelivered} pushes re-sent)");
                self.notice(at, text);
            }
        }
    }

    /// A message for the operator from outside the stream (a command's
    /// outcome, the floor link).
    pub fn tell(&mut self, at: Instant, text: String) {
        self.notice(at, text);
    }

    /// Forgets calls ended longer than `ended_grace` ago, and ends calls no
    /// worker has said anything about for longer than the idle timeout
    /// plus the take-over grace (their worker went away and none resumed
    /// them).
    pub fn prune(&mut self, now: Instant) {
        let silent = self.policy.idle_timeout + super::RESTORE_GRACE;
        for c in self.conversations.values_mut() {
            if c.ended_at.is_none() && now.saturating_duration_since(c.last_activity) >= silent {
                c.ended_at = Some(now);
            }
        }
        let grace = self.policy.ended_grace;
        let sending = &self.sending;
        self.conversations.retain(|id, c| {
            let expired = c.ended_at.is_some_and(|t| now.saturating_duration_since(t) >= grace);
            !expired || sending.values().any(|cid| cid == id)
        });
    }

    fn mirror_conversation(&mut self, id: &str, at: Instant) -> &mut Conversation {
        self.conversations.entry(id.to_string()).or_insert_with(|| Conversation::new(id, None, at))
    }

    fn mirror_suggestion(&mut self, sid: &str) -> Option<&mut Suggestion> {
        self.conversations.values_mut().find_map(|c| c.suggestion_mut(sid))
    }

    /// A search's results become the call's matches: open suggestions are
    /// re-scored and re-classified, unlisted ones superseded.
    fn mirror_matches(
        &mut self,
        id: &str,
        query: String,
        results: &[ScoredArticle],
        at: Instant,
        article: ArticleLookup,
    ) {
        let show = self.policy.show;
        for r in results {
            self.recent_scores.push_back((at, r.score));
        }
        while self
            .recent_scores
            .front()
            .is_some_and(|(t, _)| at.saturating_duration_since(*t) > CANDIDATE_WINDOW)
            || self.recent_scores.len() > 10_000
        {
            self.recent_scores.pop_front();
        }
        let c = self.mirror_conversation(id, at);
        c.searches += 1;
        c.matches = results
            .iter()
            .map(|r| {
                let known = article(&r.article_id);
                let suggested = c.suggestions.iter().rev().find(|s| s.article_id == r.article_id);
                let title = known
                    .as_ref()
                    .map(|a| a.title.clone())
                    .filter(|t| !t.is_empty())
                    .or_else(|| suggested.map(|s| s.title.clone()))
                    .unwrap_or_else(|| r.article_id.clone());
                Hit {
                    article_id: r.article_id.clone(),
                    title,
                    url: None,
                    score: r.score,
                    chunk: 0,
                    text: known.map(|a| a.content).unwrap_or_default(),
                    dense: None,
                    bm25: None,
                    terms: Vec::new(),
                    probability: None,
                    context: r.context,
                }
            })
            .collect();
        // The window: the final utterances the query was made of.
        c.window = c
            .utterances
            .iter()
            .filter(|u| u.is_final && !u.text.trim().is_empty() && query.contains(u.text.trim()))
            .map(|u| u.id.clone())
            .collect();
        c.window_text.clone_from(&query);
        c.matches_query = query;
        let listed: Vec<String> =
            c.matches.iter().filter(|h| h.score >= show).map(|h| h.article_id.clone()).collect();
        for s in c.suggestions.iter_mut().filter(|s| s.state.is_open() && s.origin == Origin::Search) {
            match c.matches.iter().find(|h| h.article_id == s.article_id && listed.contains(&h.article_id)) {
                // The worker re-classifies too, against its own threshold
                // (calibrated, perhaps): its records say where one stands.
                Some(h) => s.score = h.score,
                None => s.set(SuggestionState::Superseded, at),
            }
        }
    }

    fn mirror_setting(&mut self, knob: &str, value: &str, at: Instant) {
        let flag = value == "true";
        let scoped = knob.strip_suffix(']').and_then(|k| k.split_once('['));
        match (knob, scoped) {
            (_, Some(("mode", id))) => {
                if let (Some(c), Ok(mode)) = (self.conversations.get_mut(id), value.parse::<Mode>()) {
                    c.mode = Some(mode);
                }
            }
            (_, Some(("paused", id))) => {
                if let Some(c) = self.conversations.get_mut(id) {
                    c.paused = flag;
                }
            }
            ("mode", None) => {
                if let Ok(mode) = value.parse::<Mode>() {
                    self.policy.mode = mode;
                }
            }
            ("paused", None) => self.paused_all = flag,
            (name, None) => {
                let Some(knob) = knob_named(name) else { return };
                let Ok(number) = value.parse::<f64>() else { return };
                let p = &mut self.policy;
                match knob {
                    Knob::Show => p.show = number as f32,
                    Knob::Push => p.push = number as f32,
                    Knob::Auto => p.auto = number as f32,
                    Knob::TopK => p.top_k = number as usize,
                    Knob::Window => p.window = number as usize,
                    Knob::DebounceMs => p.debounce = Duration::from_millis(number as u64),
                }
            }
            _ => {}
        }
        // As after a command in the engine: waiting suggestions follow a
        // new push threshold at once.
        if knob == "push" {
            let push = self.policy.push;
            for s in self.conversations.values_mut().flat_map(|c| c.suggestions.iter_mut()) {
                s.classify(push, at);
            }
        }
    }

    fn mirror_kb(&mut self, at: Instant, ok: bool, text: String) {
        self.notice(at, text.clone());
        let entry = PushLogEntry {
            at,
            suggestion_id: String::new(),
            conversation_id: String::new(),
            article_id: String::new(),
            title: String::new(),
            by: Actor::Auto,
            sink: Sink::Webhook,
            status: PushStatus::Kb { ok, text: text.clone() },
        };
        self.log(entry);
        self.kb.last = Some(KbStatus { at, ok, text });
    }
}

/// The knob a `setting` record names (`{knob:?}` lower-cased).
fn knob_named(name: &str) -> Option<Knob> {
    Some(match name {
        "show" => Knob::Show,
        "push" => Knob::Push,
        "auto" => Knob::Auto,
        "topk" => Knob::TopK,
        "window" => Knob::Window,
        "debouncems" => Knob::DebounceMs,
        _ => return None,
    })
}
