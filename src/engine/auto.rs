//! Auto mode's decision: which suggestions are sent without the operator,
//! and the note saying why the best one was or was not.
//!
//! A search's best article is sent when its score reaches `auto` less a
//! credit for what the call says about it: `agreement_bonus` per earlier
//! search of the call that had the same best article (a need the customer
//! keeps talking about, rather than a word that brushed past an article
//! once; at most [`MAX_VOTES`]) and `lead_weight` per unit of its lead
//! over the runner-up. With `auto_best_only` (the default) runners-up are
//! never sent automatically: they are right far less often than the best
//! (BENCHMARKS.md, "Auto-push precision on calls"). Threshold and credits
//! come from the calibration fitted on call windows (`kb calibrate
//! --calls`, `crate::kb::calibration`).

use std::time::Instant;

use super::{Action, Actor, Effect, Engine, Mode, Stage, SuggestionState};
use crate::domain::Hit;

/// Earlier searches with the same best article credited at most (the
/// calibration's cap; the engine imports no KB code).
pub const MAX_VOTES: u32 = 3;

impl Engine {
    /// Counts the search just applied: its best article's votes (earlier
    /// searches with the same best) and lead over the runner-up. Called
    /// once per current search, before its matches apply.
    pub(super) fn note_best(&mut self, id: &str) {
        let Some(c) = self.conversations.get_mut(id) else { return };
        let Some(best) = c.matches.first() else {
            (c.best_votes, c.best_lead) = (0, 0.0);
            return;
        };
        let n = c.best_counts.entry(best.article_id.clone()).or_insert(0);
        c.best_votes = (*n).min(MAX_VOTES);
        *n += 1;
        let ranked = best.ranked_score();
        c.best_lead = (ranked - c.matches.get(1).map_or(ranked, Hit::ranked_score)).max(0.0);
    }

    /// In auto mode, sends the suggestions that pass the auto rule, best
    /// first, within the per-minute cap.
    pub(super) fn auto_send(
        &mut self,
        id: &str,
        matched_at: Option<Instant>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let p = &self.policy;
        let (auto, per_vote, per_lead, best_only, cap, global) =
            (p.auto, p.agreement_bonus, p.lead_weight, p.auto_best_only, p.max_pushes_per_minute, p.mode);
        let paused_all = self.paused_all;
        let ledger_ok = self.ledger_ok;
        let Some(c) = self.conversations.get_mut(id) else { return };
        if c.effective_mode(global) != Mode::Auto
            || c.paused
            || paused_all
            || c.ended_at.is_some()
            || !ledger_ok
        {
            return;
        }
        let top = c.matches.first();
        let best = top.map(|h| (h.article_id.clone(), h.score));
        let context = top.and_then(|h| h.context).unwrap_or(0.0);
        let credit = context + per_vote * c.best_votes as f32 + per_lead * c.best_lead;
        let is_best = |article: &str| best.as_ref().is_some_and(|(b, _)| b == article);
        let needed = |article: &str| if is_best(article) { auto - credit } else { auto };
        let mut ready: Vec<usize> = (0..c.suggestions.len())
            .filter(|&i| {
                let s = &c.suggestions[i];
                // The credit may bring the best below `push`: auto mode
                // sends it all the same (an operator decides at `push`).
                let open = s.state == SuggestionState::Queued
                    || (s.state == SuggestionState::Candidate && !s.cooling_down && is_best(&s.article_id));
                open && (!best_only || is_best(&s.article_id)) && s.score >= needed(&s.article_id)
            })
            .collect();
        ready.sort_by(|&a, &b| c.suggestions[b].score.total_cmp(&c.suggestions[a].score));
        let open_best = best
            .as_ref()
            .is_some_and(|(b, _)| c.suggestions.iter().any(|s| &s.article_id == b && s.state.is_open()));
        if let Some((b, _)) = best.as_ref().filter(|_| !open_best) {
            c.auto_note =
                Some(format!("{b}: no open suggestion (sent before, in cooldown, or below `show`)"));
        } else if let Some((b, score)) = &best {
            let sent = ready.iter().any(|&i| &c.suggestions[i].article_id == b);
            let why = format!(
                "{b}: {score:.2} {} {:.2} (auto {auto:.2} less {credit:.2}: call context {context:.2}, best in {} earlier searches, lead {:.2})",
                if sent { "≥" } else { "<" },
                needed(b),
                c.best_votes,
                c.best_lead
            );
            c.auto_note =
                Some(if sent { format!("auto-sent {why}") } else { format!("not auto-sent {why}") });
        }
        let mut chosen = Vec::new();
        for i in ready {
            if c.auto_sends_last_minute(now) >= cap as usize {
                c.auto_note = Some("not auto-sent: per-minute cap reached".into());
                break;
            }
            c.auto_sends.push_back(now);
            chosen.push(c.suggestions[i].id.clone());
        }
        for sid in chosen {
            if let Some(at) = matched_at {
                self.metrics.record(Stage::Decide, at, now);
            }
            self.send(id, &sid, Actor::Auto, Action::Send, now, fx);
        }
    }
}
