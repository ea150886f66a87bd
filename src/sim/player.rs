//! Plays scripted conversations: announces each on its queue topic, waits
//! for its transcription topic to be subscribed (or a grace period), then
//! sends its utterances on the script's clock, compressed by `speed`, in
//! both dialects at once, and ends it. Several play at once.
//!
//! Nothing starts until some client listens, and a conversation's clock
//! starts at subscription, so a client loses nothing to set-up latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::script::Script;
use super::state::{Shared, SimCall};
use crate::net::protocol::transcription_topic;

/// How conversations are scheduled.
#[derive(Debug, Clone)]
pub struct Playback {
    pub scripts: Vec<Script>,
    /// Time compression: 2.0 plays a call in half its scripted time.
    pub speed: f64,
    /// Conversations playing at once.
    pub concurrency: usize,
    /// Start the scripts over (with fresh ids) when all have played.
    pub repeat: bool,
    /// Scripted-time gap between conversation starts.
    pub start_gap: Duration,
    /// Longest wait for a conversation's transcription subscription.
    pub subscribe_grace: Duration,
    /// Agent users by script id, for calls not taken by the default agent.
    pub call_agents: BTreeMap<String, String>,
    /// The round to start at ([`crate::sim::SimConfig::first_round`]).
    pub first_round: u32,
}

/// Waits until `cond` holds, re-checking whenever the simulator's
/// subscriptions change; false on timeout.
pub async fn wait_until(sim: &Shared, timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = crate::duration::deadline(Instant::now(), timeout);
    loop {
        let changed = sim.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if cond() {
            return true;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return cond();
        }
    }
}

/// Runs the schedule until every script has played (forever with `repeat`).
pub async fn direct(sim: Arc<Shared>, playback: Playback) {
    while !wait_until(&sim, Duration::from_secs(3600), || sim.has_listener()).await {}
    let slots = Arc::new(Semaphore::new(playback.concurrency.max(1)));
    let gap = crate::duration::divide(playback.start_gap, playback.speed);
    let mut round = playback.first_round;
    loop {
        for script in &playback.scripts {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let id = round_id(&script.id, round);
            let (sim, script, pb) = (sim.clone(), script.clone(), playback.clone());
            tokio::spawn(async move {
                play(&sim, &script, &id, &pb).await;
                drop(permit);
            });
            tokio::time::sleep(gap).await;
        }
        if !playback.repeat {
            // Wait for the last conversations to finish.
            let _ = slots.acquire_many(u32::try_from(playback.concurrency.max(1)).unwrap_or(1)).await;
            return;
        }
        round = round.wrapping_add(1);
    }
}

/// A script's conversation id in a round: its own in round 0, then fresh.
pub fn round_id(script_id: &str, round: u32) -> String {
    if round == 0 { script_id.to_string() } else { format!("{script_id}-r{round}") }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn conversation_event(id: &str, queue: &str, agent: &str, ended: bool) -> Value {
    let t = now_rfc3339();
    let end = |v: Value| if ended { v } else { Value::Null };
    let mut parts = json!([
        {"id": format!("{id}-c"), "purpose": "customer", "connectedTime": t, "endTime": end(json!(t))},
        {"id": format!("{id}-q"), "purpose": "acd", "queueId": queue, "connectedTime": t, "endTime": t},
        {"id": format!("{id}-a"), "purpose": "agent", "userId": agent, "queueId": queue,
         "connectedTime": t, "endTime": end(json!(t))}
    ]);
    // Genesys omits absent times rather than sending null.
    for p in parts.as_array_mut().into_iter().flatten() {
        if let Some(o) = p.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
    }
    json!({ "id": id, "participants": parts })
}

fn envelope(topic: &str, body: Value) -> String {
    json!({ "topicName": topic, "version": "2", "eventBody": body,
            "metadata": { "CorrelationId": uuid::Uuid::new_v4().to_string() } })
    .to_string()
}

/// Plays one conversation from announcement to end.
pub async fn play(sim: &Shared, script: &Script, id: &str, pb: &Playback) {
    let queue = script.queue_id.clone().unwrap_or_else(|| sim.settings.queue_id.clone());
    let queue_topic = format!("v2.routing.queues.{queue}.conversations");
    let topic = transcription_topic(id);
    Shared::bump(&sim.counters.conversations_started);
    // Every round of a script is taken by the same agent.
    let agent = pb.call_agents.get(&script.id).unwrap_or(&sim.settings.agent_user).clone();
    let call = SimCall {
        queue_id: queue.clone(),
        agent_user: agent.clone(),
        started: SystemTime::now(),
        ended: None,
    };
    sim.lock().calls.insert(id.to_string(), call);
    // Announce, and announce again each second until the transcription topic
    // is subscribed (a client may have been reconnecting) or the grace ends.
    let give_up = crate::duration::deadline(Instant::now(), pb.subscribe_grace);
    let announce = envelope(&queue_topic, conversation_event(id, &queue, &agent, false));
    loop {
        sim.publish(&queue_topic, &announce);
        let wait = give_up.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        if wait_until(sim, wait, || sim.subscribed(&topic) || sim.has_tutorial_listener()).await
            || Instant::now() >= give_up
        {
            break;
        }
    }

    let t0 = Instant::now();
    let session_start = epoch_ms();
    let at =
        |ms: u64| crate::duration::deadline(t0, crate::duration::divide(Duration::from_millis(ms), pb.speed));
    let mut cumulative = String::new();
    let mut customer_lines = 0u32;
    for u in &script.utterances {
        tokio::time::sleep_until(at(u.at_ms)).await;
        let text = u.text.replace(['\n', '\r'], " ");
        let words = text.split_whitespace().count() as u64;
        let offset = i64::try_from(u.at_ms).unwrap_or(i64::MAX);
        let body = json!({
            "eventTime": now_rfc3339(), "conversationId": id, "communicationId": format!("{id}-comm"),
            "sessionStartTimeMs": session_start, "transcriptionStartTimeMs": session_start,
            "transcripts": [{
                "utteranceId": uuid::Uuid::new_v4().to_string(), "isFinal": true, "channel": u.channel,
                "alternatives": [{ "confidence": 0.92, "offsetMs": offset, "durationMs": words * 320,
                                   "transcript": text, "decoratedTranscript": text }],
                "engineProvider": "GENESYS", "engineId": "r2d2", "dialect": "en-US",
                "agentAssistEnabled": false, "voiceTranscriptionEnabled": true }],
            "status": { "offsetMs": offset, "status": "SESSION_ONGOING" }
        });
        sim.publish(&topic, &envelope(&topic, body));
        let label = if u.channel == "INTERNAL" { "Agent" } else { "Customer" };
        cumulative.push_str(&format!("{label}: {text}\n"));
        let tutorial =
            json!({ "type": "interaction:transcript", "data": { "id": id, "transcript": cumulative } });
        sim.publish_tutorial(&tutorial.to_string());
        Shared::bump(&sim.counters.utterances_sent);
        if u.channel != "INTERNAL" {
            customer_lines += 1;
            let every = sim.settings.copilot_every;
            if every > 0 && customer_lines.is_multiple_of(every) {
                super::sinks::raise_copilot(sim, id, &queue, &text);
            }
        }
    }
    for f in &script.frames {
        tokio::time::sleep_until(at(f.at_ms)).await;
        let raw = f.frame.to_string();
        match (f.frame.get("topicName").and_then(Value::as_str), f.frame.get("type")) {
            (Some(t), _) => {
                sim.publish(t, &raw);
            }
            (None, Some(_)) => {
                sim.publish_tutorial(&raw);
            }
            (None, None) => sim.publish_all(&raw),
        }
    }
    let end_offset = i64::try_from(script.duration_ms()).unwrap_or(i64::MAX);
    let ended = json!({ "eventTime": now_rfc3339(), "conversationId": id,
                        "status": { "offsetMs": end_offset, "status": "SESSION_ENDED" } });
    sim.publish(&topic, &envelope(&topic, ended));
    sim.publish(&queue_topic, &envelope(&queue_topic, conversation_event(id, &queue, &agent, true)));
    if let Some(c) = sim.lock().calls.get_mut(id) {
        c.ended = Some(SystemTime::now());
    }
    Shared::bump(&sim.counters.conversations_ended);
}

#[cfg(test)]
mod tests {
    use super::round_id;

    #[test]
    fn round_zero_keeps_the_script_id_and_later_rounds_are_fresh() {
        assert_eq!(round_id("conv-1", 0), "conv-1");
        assert_eq!(round_id("conv-1", 3), "conv-1-r3");
        assert_ne!(round_id("conv-1", 3), round_id("conv-1", 4));
    }
}
