//! The runtime's floor-mode surface: following and dropping queues as
//! leases come and go, resuming calls taken over from another worker, and
//! running one operator command with its outcome for the reply, and
//! dropping what a stopped queue's stream had already sent ([`Handed`]).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::Runtime;
use crate::domain::StreamEvent;
use crate::engine::{Command, ConversationRecord, Effect, Msg, Record};
use crate::ledger::Synced;
use crate::widget::{AgentSignal, WidgetHub};

impl Runtime {
    /// Starts following a queue (its lease is now held).
    pub fn follow_queue(&mut self, queue: &str) {
        self.handed.follow(queue);
        if !self.streams.contains_key(queue) {
            let handle = (self.new_stream)(vec![queue.to_string()]);
            self.streams.insert(queue.to_string(), handle);
        }
    }

    /// Stops following a queue (its lease was lost) and hands its calls
    /// over: the engine forgets them, so nothing of theirs is sent from
    /// here again.
    pub fn unfollow_queue(&mut self, queue: &str) {
        if let Some(s) = self.streams.remove(queue) {
            tokio::spawn(s.stop());
        }
        let calls: Vec<String> = self
            .engine
            .conversations()
            .filter(|c| c.queue_id.as_deref() == Some(queue))
            .map(|c| c.id.clone())
            .collect();
        self.handed.unfollow(queue, calls);
        self.handle(Msg::HandedOver { queue: queue.to_string() });
    }

    /// Answers on `done` once every record handed to the ledger so far is
    /// committed where the floor reads it (a queue given back).
    pub fn sync_ledger(&self, done: Synced) {
        match &self.ledger {
            Some(l) => l.sync(done),
            None => {
                let _ = done.send(Ok(()));
            }
        }
    }

    /// Queues followed now.
    pub fn followed_queues(&self) -> Vec<String> {
        self.streams.keys().filter(|q| !q.is_empty()).cloned().collect()
    }

    /// Resumes calls from another worker's records (a queue taken over):
    /// same suggestion ids, cooldowns kept, decided suggestions delivered
    /// once. Calls this runtime already has are left as they are.
    pub fn resume(&mut self, records: Vec<ConversationRecord>) {
        let fresh: Vec<_> =
            records.into_iter().filter(|r| self.engine.conversation(&r.id).is_none()).collect();
        if fresh.is_empty() {
            return;
        }
        let effects = self.engine.restore(fresh, Instant::now());
        for e in effects {
            self.run(e);
        }
    }

    /// Runs one operator command and returns the records it produced (its
    /// outcome, for the command's reply).
    pub fn command(&mut self, cmd: Command) -> Vec<Record> {
        let effects = self.engine.handle(Msg::Command(cmd), Instant::now());
        let outcome = effects
            .iter()
            .filter_map(|e| if let Effect::Record(r) = e { Some(r.clone()) } else { None })
            .collect();
        for e in effects {
            self.run(e);
        }
        while self.pushes.try_join_next().is_some() {}
        outcome
    }
}

impl Runtime {
    /// The agent widget's hub, when it is served (a floor worker feeds it
    /// from the stream).
    pub fn widget_hub(&self) -> Option<&WidgetHub> {
        self.widget.as_ref().map(|(hub, _)| hub)
    }

    /// Whether this worker answers for a call: it has it, and follows the
    /// call's queue (a worker that lost the queue keeps the call in memory
    /// until it idles out, but is no longer its owner).
    pub fn owns_call(&self, conversation_id: &str) -> bool {
        let followed = self.followed_queues();
        self.engine
            .conversation(conversation_id)
            .is_some_and(|c| c.queue_id.as_ref().is_none_or(|q| followed.contains(q)))
    }

    /// What an agent's page did (sent on by the worker that serves the
    /// page), for the engine.
    pub fn agent_signal(&mut self, signal: AgentSignal) {
        self.handle(Msg::Agent(super::agent_event(signal)));
    }
}

/// Stream events of queues this runtime stopped following. The stopped
/// stream may have put events in the channel before it stopped; handled,
/// a late transcript would start the call again here (with no queue, so
/// under no lease) while its new owner assists it too.
#[derive(Debug, Default)]
pub(super) struct Handed {
    queues: HashSet<String>,
    /// Call → its queue, for calls of those queues.
    calls: HashMap<String, String>,
}

impl Handed {
    fn unfollow(&mut self, queue: &str, calls: Vec<String>) {
        self.queues.insert(queue.to_string());
        self.calls.extend(calls.into_iter().map(|c| (c, queue.to_string())));
    }

    fn follow(&mut self, queue: &str) {
        if self.queues.remove(queue) {
            self.calls.retain(|_, q| q != queue);
        }
    }

    /// Whether `msg` is a stream event of a call let go of.
    pub(super) fn is_stale(&mut self, msg: &Msg) -> bool {
        if self.queues.is_empty() {
            return false;
        }
        let Msg::Stream(ev) = msg else { return false };
        match ev {
            StreamEvent::ConversationStarted { conversation_id, queue_id: Some(q) }
                if self.queues.contains(q) =>
            {
                self.calls.insert(conversation_id.clone(), q.clone());
                true
            }
            // Its last event: forgotten here too.
            StreamEvent::ConversationEnded { conversation_id } => {
                self.calls.remove(conversation_id).is_some()
            }
            StreamEvent::ConversationStarted { conversation_id, .. }
            | StreamEvent::Participants { conversation_id, .. }
            | StreamEvent::CopilotRequest { conversation_id, .. } => self.calls.contains_key(conversation_id),
            StreamEvent::Transcript(t) => self.calls.contains_key(&t.conversation_id),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StreamEvent as E;

    fn started(c: &str, q: &str) -> Msg {
        Msg::Stream(E::ConversationStarted { conversation_id: c.into(), queue_id: Some(q.into()) })
    }

    #[test]
    fn events_of_a_queue_let_go_of_are_dropped_until_it_is_followed_again() {
        let mut h = Handed::default();
        assert!(!h.is_stale(&started("c1", "q1")));
        h.unfollow("q1", vec!["c1".into()]);
        let ended = |c: &str| Msg::Stream(E::ConversationEnded { conversation_id: c.into() });
        // A known call and a call that starts late on the same queue.
        assert!(h.is_stale(&started("c1", "q1")));
        assert!(h.is_stale(&started("c2", "q1")));
        assert!(!h.is_stale(&started("c3", "q2")));
        assert!(h.is_stale(&ended("c2")));
        assert!(!h.is_stale(&ended("c2")), "forgotten once ended");
        h.follow("q1");
        assert!(!h.is_stale(&started("c1", "q1")));
        assert!(!h.is_stale(&Msg::Tick));
    }
}
