//! A call's searches, from the utterance that starts one to the
//! suggestions its results make: the debounce ([`schedule_search`]), need
//! verdicts that take an utterance out of the window, the searches that
//! fall due, and the results (stale ones only recorded).

use std::time::{Duration, Instant};

use super::{
    CANDIDATE_WINDOW, Conversation, Effect, Engine, Mode, Origin, Record, RequestId, ScoredArticle,
    SearchTiming, Stage, Suggestion, SuggestionState,
};
use crate::domain::Hit;

impl Engine {
    /// An utterance was judged: it joins the window (and starts a search)
    /// only if it carries a need.
    pub(super) fn on_need_judged(&mut self, id: &str, utterance_id: &str, need: bool, now: Instant) {
        let policy = &self.policy;
        let Some(c) = self.conversations.get_mut(id).filter(|c| c.ended_at.is_none()) else { return };
        if !c.set_need(utterance_id, need) {
            return;
        }
        if need {
            // It is in the window already: nothing changes.
            return;
        }
        self.metrics.needless += 1;
        if !c.refresh_window(policy) {
            return;
        }
        // The window goes back to what it was without the utterance, which
        // is usually what was last searched: nothing new to look for then.
        if c.window_text.is_empty() || c.window_text == c.matches_query {
            c.search_due = None;
            c.burst_started = None;
        } else if c.effective_mode(policy.mode) != Mode::Off && !c.paused && !self.paused_all {
            schedule_search(c, policy.debounce, now);
        }
    }

    /// Emits the searches whose debounce has run out.
    pub(super) fn fire_due_searches(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let k = self.policy.search_k();
        for c in self.conversations.values_mut() {
            if c.search_due.is_none_or(|due| due > now) || c.window_text.is_empty() {
                continue;
            }
            c.search_due = None;
            c.burst_started = None;
            self.next_request += 1;
            c.inflight = Some((self.next_request, c.window_seq));
            c.searches += 1;
            fx.push(Effect::Search {
                request: self.next_request,
                conversation_id: c.id.clone(),
                query: c.window_text.clone(),
                k,
            });
        }
    }

    pub(super) fn on_search_done(
        &mut self,
        request: RequestId,
        id: &str,
        mut hits: Vec<Hit>,
        timing: SearchTiming,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(c) = self.conversations.get_mut(id) else { return };
        let current = c.inflight == Some((request, c.window_seq)) && c.ended_at.is_none();
        if c.inflight.is_some_and(|(r, _)| r == request) {
            c.inflight = None;
        }
        self.metrics.searches += 1;
        let kb_version = self.kb.version;
        if c.ended_at.is_none() {
            // A stale result answered a window the call has since moved
            // past, but what the customer said then is still evidence about
            // the call: under load most searches can go stale, and a
            // context fed only by current ones would starve.
            let p = &self.policy;
            c.context.rerank(&mut hits, p.context_weight, p.context_decay);
        }
        hits.truncate(self.policy.top_k);
        let record = |query: String, stale: bool| {
            Effect::Record(Record::Search {
                conversation_id: id.to_string(),
                request,
                query,
                results: hits
                    .iter()
                    .map(|h| ScoredArticle {
                        article_id: h.article_id.clone(),
                        score: h.score,
                        context: h.context,
                    })
                    .collect(),
                stale,
                kb_version,
            })
        };
        if !current {
            // The window moved on (or the call ended) while this ran.
            self.metrics.stale_results += 1;
            fx.push(record(String::new(), true));
            return;
        }
        fx.push(record(c.window_text.clone(), false));
        if let Some(at) = c.window_event_at {
            self.metrics.record(Stage::EventToSearch, at, timing.started);
        }
        self.metrics.record(Stage::Search, timing.started, timing.finished);
        for h in &hits {
            self.recent_scores.push_back((now, h.score));
        }
        while self.recent_scores.front().is_some_and(|(t, _)| now.duration_since(*t) > CANDIDATE_WINDOW)
            || self.recent_scores.len() > 10_000
        {
            self.recent_scores.pop_front();
        }
        c.matches_query = c.window_text.clone();
        c.matches = hits;
        self.note_best(id);
        self.apply_matches(id, timing.finished, now, fx);
    }

    /// Turns a conversation's latest matches into suggestions, supersedes
    /// the ones no longer matched, and sends what auto mode allows.
    fn apply_matches(&mut self, id: &str, matched_at: Instant, now: Instant, fx: &mut Vec<Effect>) {
        let policy = self.policy.clone();
        let Some(c) = self.conversations.get_mut(id) else { return };
        let mut listed = Vec::new();
        // Listed by the score the call ranks them by: an article the call
        // keeps returning to is shown even when this window alone says
        // little about it (`push` and `auto` still weigh its own score).
        for h in c.matches.clone().iter().filter(|h| h.ranked_score() >= policy.show) {
            listed.push(h.article_id.clone());
            if let Some(s) =
                c.suggestions.iter_mut().find(|s| s.article_id == h.article_id && s.state.is_open())
            {
                s.score = h.score;
                if s.original.is_none() {
                    s.content.clone_from(&h.text);
                }
                s.event_at = c.window_event_at;
                s.classify(policy.push, now);
                continue;
            }
            let busy = c
                .suggestions
                .iter()
                .any(|s| s.article_id == h.article_id && s.state == SuggestionState::Sending);
            if busy || c.in_cooldown(&h.article_id, policy.cooldown, now) {
                continue;
            }
            self.next_suggestion += 1;
            let sid = format!("{}-{}", self.run_id, self.next_suggestion);
            let mut s = Suggestion::new(sid, id, &h.article_id, &h.title, &h.text, h.score, now);
            s.url.clone_from(&h.url);
            s.event_at = c.window_event_at;
            s.classify(policy.push, now);
            self.metrics.suggestions += 1;
            fx.push(Effect::Record(s.opened()));
            c.suggestions.push(s);
        }
        for s in c.suggestions.iter_mut().filter(|s| s.state.is_open() && s.origin == Origin::Search) {
            if !listed.contains(&s.article_id) {
                s.set(SuggestionState::Superseded, now);
            }
        }
        c.trim_suggestions();
        self.auto_send(id, Some(matched_at), now, fx);
    }
}

/// Debounce: each event pushes the search back by `debounce`, but a
/// continuous burst waits at most twice that before searching.
pub(super) fn schedule_search(c: &mut Conversation, debounce: Duration, now: Instant) {
    let burst = *c.burst_started.get_or_insert(now);
    c.search_due = Some((now + debounce).min(burst + debounce * 2));
}
