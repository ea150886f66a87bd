//! Operator commands: approve, edit-and-send, reject, retry, push by hand,
//! modes, pause, and live tuning. Operator sends bypass the cooldown and
//! the automatic rate cap (a person decided); a refused command becomes a
//! notice, never a panic.

use std::time::Instant;

use super::msg::{Action, Actor, ArticleRef, Command, Effect, Record};
use super::policy::{Knob, Mode};
use super::suggestion::{Origin, Suggestion, SuggestionState};
use super::{Engine, schedule_search};

impl Engine {
    pub(super) fn on_command(&mut self, cmd: Command, now: Instant, fx: &mut Vec<Effect>) {
        match cmd {
            Command::Approve { suggestion } => self.operator_send(&suggestion, Action::Send, None, now, fx),
            Command::Edit { suggestion, text } => {
                if text.trim().is_empty() {
                    self.notice(now, "not sent: the edited text is empty".into());
                } else {
                    self.operator_send(&suggestion, Action::SendEdited, Some(text), now, fx);
                }
            }
            Command::Retry { suggestion } => self.operator_send(&suggestion, Action::Retry, None, now, fx),
            Command::ApproveAll { conversation } => {
                let (show, push) = (self.policy.show, self.policy.push);
                let ids: Vec<String> = self
                    .conversations
                    .get(&conversation)
                    .map(|c| {
                        c.suggestions
                            .iter()
                            .filter(|s| s.state == SuggestionState::Queued && s.score >= push.max(show))
                            .map(|s| s.id.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.is_empty() {
                    self.notice(
                        now,
                        "nothing to approve: no listed suggestion is at or above the push threshold".into(),
                    );
                }
                for id in ids {
                    self.operator_send(&id, Action::Send, None, now, fx);
                }
            }
            Command::Reject { suggestion } => self.reject(&suggestion, now, fx),
            Command::PushArticle { conversation, article } => {
                self.push_article(&conversation, article, now, fx)
            }
            Command::SetMode { conversation: None, mode } => {
                self.policy.mode = mode;
                fx.push(setting("mode", mode.as_str()));
                self.after_policy_change(now, fx);
            }
            Command::SetMode { conversation: Some(id), mode } => {
                let Some(c) = self.conversations.get_mut(&id) else {
                    return self.notice(now, format!("no conversation {id}"));
                };
                c.mode = Some(mode);
                fx.push(setting(&format!("mode[{id}]"), mode.as_str()));
                self.after_policy_change(now, fx);
            }
            Command::SetPaused { conversation: None, paused } => {
                self.paused_all = paused;
                fx.push(setting("paused", if paused { "true" } else { "false" }));
                self.after_policy_change(now, fx);
            }
            Command::SetPaused { conversation: Some(id), paused } => {
                let Some(c) = self.conversations.get_mut(&id) else {
                    return self.notice(now, format!("no conversation {id}"));
                };
                c.paused = paused;
                fx.push(setting(&format!("paused[{id}]"), if paused { "true" } else { "false" }));
                self.after_policy_change(now, fx);
            }
            Command::Adjust { knob, steps } => {
                self.policy.adjust(knob, steps);
                let value = match knob {
                    Knob::Show => format!("{:.2}", self.policy.show),
                    Knob::Push => format!("{:.2}", self.policy.push),
                    Knob::Auto => format!("{:.2}", self.policy.auto),
                    Knob::TopK => self.policy.top_k.to_string(),
                    Knob::Window => self.policy.window.to_string(),
                    Knob::DebounceMs => self.policy.debounce.as_millis().to_string(),
                };
                fx.push(setting(&format!("{knob:?}").to_lowercase(), &value));
                if matches!(knob, Knob::Window | Knob::TopK) {
                    self.requery_all(now);
                }
                self.after_policy_change(now, fx);
            }
        }
    }

    /// Re-applies thresholds and modes to every waiting suggestion, at once.
    fn after_policy_change(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let push = self.policy.push;
        let ids: Vec<String> = self.conversations.keys().cloned().collect();
        for c in self.conversations.values_mut() {
            for s in &mut c.suggestions {
                s.classify(push, now);
            }
        }
        for id in ids {
            self.auto_send(&id, None, now, fx);
        }
    }

    /// The window or `top_k` changed: search every live conversation again.
    fn requery_all(&mut self, now: Instant) {
        let (policy, paused_all) = (self.policy.clone(), self.paused_all);
        for c in self.conversations.values_mut().filter(|c| c.ended_at.is_none()) {
            c.refresh_window(&policy);
            // A new top_k needs a new search even if the window is the same.
            c.window_seq += 1;
            if !c.window_text.is_empty()
                && !c.paused
                && !paused_all
                && c.effective_mode(policy.mode) != Mode::Off
            {
                schedule_search(c, policy.debounce, now);
            }
        }
    }

    fn find(&self, sid: &str) -> Option<String> {
        self.conversations.values().find(|c| c.suggestions.iter().any(|s| s.id == sid)).map(|c| c.id.clone())
    }

    fn operator_send(
        &mut self,
        sid: &str,
        action: Action,
        text: Option<String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(cid) = self.find(sid) else {
            return self.notice(now, format!("no suggestion {sid}"));
        };
        let deleted = self
            .conversations
            .get(&cid)
            .and_then(|c| c.suggestions.iter().find(|s| s.id == sid))
            .and_then(|s| self.deleted_article(&s.article_id));
        if let Some(why) = deleted {
            return self.refuse(now, why, fx);
        }
        let Some(c) = self.conversations.get_mut(&cid) else { return };
        if c.ended_at.is_some() {
            return self.notice(now, format!("not sent: conversation {cid} has ended"));
        }
        let Some(s) = c.suggestion_mut(sid) else { return };
        let allowed = match action {
            Action::Retry => matches!(s.state, SuggestionState::Failed(_)),
            _ => s.state.is_sendable(),
        };
        if !allowed {
            let state = s.state.name();
            return self.notice(now, format!("not sent: suggestion {sid} is {state}"));
        }
        if let Some(t) = text {
            s.original.get_or_insert_with(|| s.content.clone());
            s.content = t;
        }
        self.send(&cid, sid, Actor::Operator, action, now, fx);
    }

    fn reject(&mut self, sid: &str, now: Instant, fx: &mut Vec<Effect>) {
        let Some(cid) = self.find(sid) else {
            return self.notice(now, format!("no suggestion {sid}"));
        };
        let cooldown_start = now;
        let Some(c) = self.conversations.get_mut(&cid) else { return };
        let Some(s) = c.suggestion_mut(sid).filter(|s| s.state.is_sendable()) else {
            return self.notice(now, format!("suggestion {sid} cannot be rejected now"));
        };
        s.set(SuggestionState::Rejected, now);
        let article = s.article_id.clone();
        fx.push(Effect::Record(Record::Decision {
            suggestion_id: sid.to_string(),
            conversation_id: cid.clone(),
            article_id: article.clone(),
            action: Action::Reject,
            by: Actor::Operator,
            original: None,
            edited: None,
        }));
        // A rejected article is not offered again for the cooldown either.
        c.pushed.insert(article, cooldown_start);
    }

    fn push_article(&mut self, cid: &str, article: ArticleRef, now: Instant, fx: &mut Vec<Effect>) {
        if let Some(why) = self.deleted_article(&article.id) {
            return self.refuse(now, why, fx);
        }
        let Some(c) = self.conversations.get_mut(cid) else {
            return self.notice(now, format!("no conversation {cid}"));
        };
        if c.ended_at.is_some() {
            return self.notice(now, format!("not sent: conversation {cid} has ended"));
        }
        let score = c.matches.iter().find(|h| h.article_id == article.id).map_or(0.0, |h| h.score);
        self.next_suggestion += 1;
        let sid = format!("{}-{}", self.run_id, self.next_suggestion);
        let mut s =
            Suggestion::new(sid.clone(), cid, &article.id, &article.title, &article.content, score, now);
        s.origin = Origin::Manual;
        self.metrics.suggestions += 1;
        fx.push(Effect::Record(s.opened()));
        c.suggestions.push(s);
        c.trim_suggestions();
        self.send(cid, &sid, Actor::Operator, Action::ManualPush, now, fx);
    }
}

fn setting(knob: &str, value: &str) -> Effect {
    Effect::Record(Record::Setting { knob: knob.to_string(), value: value.to_string() })
}
