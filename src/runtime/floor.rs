//! The runtime's floor-mode surface: following and dropping queues as
//! leases come and go, resuming calls taken over from another worker, and
//! running one operator command with its outcome for the reply.

use std::time::Instant;

use super::Runtime;
use crate::engine::{Command, ConversationRecord, Effect, Msg, Record};
use crate::widget::{AgentSignal, WidgetHub};

impl Runtime {
    /// Starts following a queue (its lease is now held).
    pub fn follow_queue(&mut self, queue: &str) {
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
        self.handle(Msg::HandedOver { queue: queue.to_string() });
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
