//! What agents see and say: acknowledgements and feedback from the widget
//! (with per-article counts for the console), and Genesys Copilot's
//! third-party-action requests, answered with the call's best current
//! article through the `genesys-copilot` sink.

use std::time::Instant;

use super::msg::{AgentEvent, Feedback};
use super::push::{PushLogEntry, PushStatus, request};
use super::suggestion::{Delivery, DeliveryState, Suggestion, SuggestionState};
use super::{Actor, Effect, Engine, Record};
use crate::domain::Sink;

/// How agents received one article, over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArticleFeedback {
    /// Widget pages that showed it.
    pub shown: u32,
    pub useful: u32,
    pub not_useful: u32,
    /// Copied counts as used.
    pub copied: u32,
}

impl ArticleFeedback {
    fn slot(&mut self, f: Feedback) -> &mut u32 {
        match f {
            Feedback::Useful => &mut self.useful,
            Feedback::NotUseful => &mut self.not_useful,
            Feedback::Copied => &mut self.copied,
        }
    }

    pub fn add(&mut self, f: Feedback) {
        *self.slot(f) += 1;
    }

    pub fn remove(&mut self, f: Feedback) {
        let n = self.slot(f);
        *n = n.saturating_sub(1);
    }
}

impl Engine {
    /// An agent page acknowledged a suggestion or gave feedback on it.
    pub(super) fn on_agent(&mut self, ev: AgentEvent, now: Instant, fx: &mut Vec<Effect>) {
        let (cid, sid) = match &ev {
            AgentEvent::Acknowledged { conversation_id, suggestion_id, .. }
            | AgentEvent::Feedback { conversation_id, suggestion_id, .. } => {
                (conversation_id.clone(), suggestion_id.clone())
            }
        };
        let Some(s) = self.conversations.get_mut(&cid).and_then(|c| c.suggestion_mut(&sid)) else {
            return;
        };
        let (article, title, by) =
            (s.article_id.clone(), s.title.clone(), s.decided_by.unwrap_or(Actor::Operator));
        match ev {
            AgentEvent::Acknowledged { user_id, .. } => {
                if s.acknowledged {
                    return;
                }
                s.acknowledged = true;
                self.feedback.entry(article.clone()).or_default().shown += 1;
                if let Some(e) = self.log_entry(&sid, Sink::Widget)
                    && let PushStatus::Pushed { acknowledged, .. } = &mut e.status
                {
                    *acknowledged = true;
                }
                fx.push(Effect::Record(Record::Acknowledged {
                    suggestion_id: sid,
                    conversation_id: cid,
                    article_id: article,
                    user_id,
                }));
            }
            AgentEvent::Feedback { feedback, user_id, .. } => {
                let previous = s.feedback.replace(feedback);
                let counts = self.feedback.entry(article.clone()).or_default();
                if let Some(p) = previous {
                    counts.remove(p);
                }
                counts.add(feedback);
                self.log(PushLogEntry {
                    at: now,
                    suggestion_id: sid.clone(),
                    conversation_id: cid.clone(),
                    article_id: article.clone(),
                    title,
                    by,
                    sink: Sink::Widget,
                    status: PushStatus::Agent { feedback },
                });
                fx.push(Effect::Record(Record::AgentFeedback {
                    suggestion_id: sid,
                    conversation_id: cid,
                    article_id: article,
                    feedback,
                    user_id,
                }));
            }
        }
    }

    /// Copilot asks for a suggestion: answer with the best current match at
    /// or above `push`, through the copilot sink only. Its cooldown and
    /// idempotency are those of any push (the Copilot suggestion id makes the
    /// PATCH idempotent).
    pub(super) fn on_copilot_request(&mut self, cid: &str, gid: String, now: Instant, fx: &mut Vec<Effect>) {
        if !self.copilot {
            return;
        }
        let push = self.policy.push;
        let Some(c) = self.conversations.get_mut(cid).filter(|c| c.ended_at.is_none()) else {
            return self.notice(now, format!("Copilot asked about {cid}, which is not followed"));
        };
        let Some(best) = c.matches.first().filter(|h| h.score >= push).cloned() else {
            return self.notice(now, format!("Copilot asked about {cid}: nothing at or above push to offer"));
        };
        let customer = c.customer_participant();
        let existing =
            c.suggestions.iter().position(|s| s.article_id == best.article_id && s.state.is_open());
        let i = match existing {
            Some(i) => i,
            None => {
                self.next_suggestion += 1;
                let sid = format!("{}-{}", self.run_id, self.next_suggestion);
                let mut s =
                    Suggestion::new(sid, cid, &best.article_id, &best.title, &best.text, best.score, now);
                s.url.clone_from(&best.url);
                s.event_at = c.window_event_at;
                self.metrics.suggestions += 1;
                fx.push(Effect::Record(s.opened()));
                c.suggestions.push(s);
                c.suggestions.len() - 1
            }
        };
        let s = &mut c.suggestions[i];
        s.set(SuggestionState::Sending, now);
        s.sent_at = Some(now);
        s.decided_by = Some(Actor::Auto);
        s.deliveries = vec![Delivery {
            sink: Sink::GenesysCopilot,
            state: DeliveryState::Pending { attempts: 0, note: None },
        }];
        fx.push(Effect::Push(request(s, cid, vec![Sink::GenesysCopilot], customer, Some(gid))));
        c.pushed.insert(s.article_id.clone(), now);
        let entry = PushLogEntry {
            at: now,
            suggestion_id: s.id.clone(),
            conversation_id: cid.to_string(),
            article_id: s.article_id.clone(),
            title: s.title.clone(),
            by: Actor::Auto,
            sink: Sink::GenesysCopilot,
            status: PushStatus::Recording,
        };
        let sid = s.id.clone();
        self.log(entry);
        self.sending.insert(sid, cid.to_string());
    }

    /// Counts of how agents received each article.
    pub fn article_feedback(&self, article: &str) -> ArticleFeedback {
        self.feedback.get(article).copied().unwrap_or_default()
    }
}
