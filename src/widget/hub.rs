//! The widget's own projection of each call: its agents, the suggestions
//! shown so far (rendered once), and a bounded log of feed events with ids
//! that only grow, so a page can resume from `Last-Event-ID`. The engine
//! stays the owner of suggestion state; the hub keeps what pages need.
//!
//! One lock over all feeds, held only to read or append; live pages follow
//! a feed through its broadcast channel, subscribed under the same lock as
//! the replay is read, so nothing falls between the two.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::render::{passage_html, safe_url};
use super::{FeedEvent, PublishOutcome, WidgetConfig, WidgetSuggestion};

/// Live events a slow page may fall behind by before it is cut off (it then
/// reconnects and resumes from the log).
const LIVE_BUFFER: usize = 256;
/// Suggestion ids remembered per call for idempotency.
const SEEN_IDS: usize = 4096;
/// Ended feeds are swept at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// An SSE event as pages receive it: `event:` name, JSON `data:` and, when
/// set, the `id:` to resume after.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    pub id: Option<u64>,
    pub kind: &'static str,
    pub data: Arc<str>,
}

/// What a page gets on connecting: what it missed, then live events.
pub struct Subscription {
    pub replay: Vec<FeedItem>,
    pub live: broadcast::Receiver<FeedItem>,
    /// Live items with ids up to this were in the replay.
    pub after: u64,
    /// The call has ended; nothing more will come after the replay.
    pub ended: bool,
}

struct Shown {
    suggestion: WidgetSuggestion,
    html: Arc<str>,
    url: Option<String>,
}

impl Shown {
    fn payload(&self) -> Arc<str> {
        let s = &self.suggestion;
        json!({
            "conversation_id": s.conversation_id, "suggestion_id": s.suggestion_id,
            "article_id": s.article_id, "title": s.title, "score": s.score,
            "probability": s.probability, "html": &*self.html, "url": self.url, "state": s.state,
        })
        .to_string()
        .into()
    }
}

struct Feed {
    agents: Vec<String>,
    log: VecDeque<FeedItem>,
    /// Ids up to this have left the log (0: nothing has).
    trimmed_through: u64,
    shown: VecDeque<Shown>,
    seen: (HashSet<String>, VecDeque<String>),
    acked: HashSet<(String, Option<String>)>,
    ended_at: Option<Instant>,
    touched: Instant,
    tx: broadcast::Sender<FeedItem>,
}

impl Feed {
    fn new(now: Instant) -> Self {
        Self {
            agents: Vec::new(),
            log: VecDeque::new(),
            trimmed_through: 0,
            shown: VecDeque::new(),
            seen: (HashSet::new(), VecDeque::new()),
            acked: HashSet::new(),
            ended_at: None,
            touched: now,
            tx: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    fn head(&self) -> u64 {
        self.log.back().and_then(|e| e.id).unwrap_or(self.trimmed_through)
    }

    /// The call as it stands, for a page whose resume point left the log:
    /// `reset`, every suggestion kept in its current state, `ended` if so.
    /// Only the last event carries an id: a page cut off mid-snapshot
    /// resumes from where it was and gets the whole snapshot again.
    fn snapshot(&self, conversation_id: &str) -> Vec<FeedItem> {
        let mut items = vec![FeedItem { id: None, kind: "reset", data: json!({}).to_string().into() }];
        items.extend(self.shown.iter().map(|s| FeedItem { id: None, kind: "suggestion", data: s.payload() }));
        if self.ended_at.is_some() {
            let data = json!({ "conversation_id": conversation_id }).to_string().into();
            items.push(FeedItem { id: None, kind: "ended", data });
        }
        if let Some(last) = items.last_mut() {
            last.id = Some(self.head());
        }
        items
    }
}

struct Inner {
    feeds: HashMap<String, Feed>,
    swept: Instant,
}

/// Per-conversation live feeds. Cheap to clone: clones share the feeds.
#[derive(Clone)]
pub struct WidgetHub {
    inner: Arc<Mutex<Inner>>,
    next_id: Arc<AtomicU64>,
    /// Random per hub: event ids are `{epoch}-{n}`, so a page that resumes
    /// with an id from before a restart is told to start over, not given a
    /// partial replay of a numbering that began again.
    epoch: u32,
    max_suggestions: usize,
    max_events: usize,
    max_calls: usize,
    ended_grace: Duration,
}

impl WidgetHub {
    /// A hub with the `[widget]` section's limits.
    pub fn new(config: &WidgetConfig) -> Self {
        Self::with_epoch(config, rand::random())
    }

    /// A hub whose event ids are `{epoch}-{n}` with a given epoch: on a
    /// floor every worker's hub uses the stream's, so an id one worker gave
    /// out resumes a page on any other.
    pub fn with_epoch(config: &WidgetConfig, epoch: u32) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner { feeds: HashMap::new(), swept: Instant::now() })),
            next_id: Arc::new(AtomicU64::new(1)),
            epoch,
            max_suggestions: config.max_suggestions_per_call.max(1),
            max_events: config.max_events_per_call.max(config.max_suggestions_per_call).max(1),
            max_calls: config.max_calls.max(1),
            ended_grace: config.ended_grace(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an event to its call's feed and wakes the call's pages.
    /// Idempotent: a suggestion id seen before, an update that changes
    /// nothing, or a second end is a [`PublishOutcome::Duplicate`].
    pub fn publish(&self, ev: FeedEvent) -> PublishOutcome {
        self.publish_with(ev, None)
    }

    /// [`Self::publish`] under a given event number (on a floor, the
    /// event's sequence in the stream, the same on every worker). Numbers
    /// must grow per call; one at or below the feed's last is a redelivery
    /// and a [`PublishOutcome::Duplicate`].
    pub fn publish_at(&self, ev: FeedEvent, n: u64) -> PublishOutcome {
        self.publish_with(ev, Some(n))
    }

    fn publish_with(&self, ev: FeedEvent, n: Option<u64>) -> PublishOutcome {
        // Markdown is rendered before taking the lock.
        let shown = match &ev {
            FeedEvent::Suggestion(s) => Some(Shown {
                html: passage_html(&s.text).into(),
                url: safe_url(s.url.as_deref()),
                suggestion: s.clone(),
            }),
            _ => None,
        };
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        let conversation_id = match &ev {
            FeedEvent::Participants { conversation_id, .. }
            | FeedEvent::Update { conversation_id, .. }
            | FeedEvent::Ended { conversation_id } => conversation_id.clone(),
            FeedEvent::Suggestion(s) => s.conversation_id.clone(),
        };
        if matches!(ev, FeedEvent::Update { .. }) && !inner.feeds.contains_key(&conversation_id) {
            return PublishOutcome::Unknown;
        }
        let Some(feed) = self.feed_mut(&mut inner, &conversation_id, now, false) else {
            return PublishOutcome::Unknown; // unreachable: publishing may always make room
        };
        feed.touched = now;
        if n.is_some_and(|n| n <= feed.head()) {
            return PublishOutcome::Duplicate;
        }
        let (kind, data) = match ev {
            FeedEvent::Participants { agent_user_ids, .. } => {
                feed.agents = agent_user_ids;
                return PublishOutcome::Delivered;
            }
            FeedEvent::Suggestion(s) => {
                if feed.seen.0.contains(&s.suggestion_id) {
                    return PublishOutcome::Duplicate;
                }
                if feed.ended_at.is_some() {
                    return PublishOutcome::Closed;
                }
                remember(&mut feed.seen, s.suggestion_id.clone());
                let Some(shown) = shown else { return PublishOutcome::Unknown };
                let data = shown.payload();
                feed.shown.push_back(shown);
                if feed.shown.len() > self.max_suggestions {
                    feed.shown.pop_front();
                }
                ("suggestion", data)
            }
            FeedEvent::Update { suggestion_id, state, .. } => {
                let Some(s) = feed.shown.iter_mut().find(|s| s.suggestion.suggestion_id == suggestion_id)
                else {
                    return PublishOutcome::Unknown;
                };
                if s.suggestion.state == state {
                    return PublishOutcome::Duplicate;
                }
                s.suggestion.state.clone_from(&state);
                ("update", json!({ "suggestion_id": suggestion_id, "state": state }).to_string().into())
            }
            FeedEvent::Ended { conversation_id } => {
                if feed.ended_at.is_some() {
                    return PublishOutcome::Duplicate;
                }
                feed.ended_at = Some(now);
                ("ended", json!({ "conversation_id": conversation_id }).to_string().into())
            }
        };
        let id = n.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        let item = FeedItem { id: Some(id), kind, data };
        feed.log.push_back(item.clone());
        while feed.log.len() > self.max_events {
            if let Some(gone) = feed.log.pop_front() {
                feed.trimmed_through = gone.id.unwrap_or(feed.trimmed_through);
            }
        }
        // No page listening is fine: the log keeps it for pages to come.
        let _ = feed.tx.send(item);
        PublishOutcome::Delivered
    }

    /// The call's feed, made if need be. When the hub is full, a feed only
    /// a page asked for goes first, then the call that ended longest ago,
    /// then the one quiet longest; a page (`for_page`) may push out only
    /// another page's empty feed, never a real call's (`None` then).
    fn feed_mut<'a>(
        &self,
        inner: &'a mut Inner,
        conversation_id: &str,
        now: Instant,
        for_page: bool,
    ) -> Option<&'a mut Feed> {
        if !inner.feeds.contains_key(conversation_id) && inner.feeds.len() >= self.max_calls {
            let victim = inner
                .feeds
                .iter()
                .map(|(id, f)| {
                    let real = !f.log.is_empty() || !f.agents.is_empty();
                    (real, f.ended_at.is_none(), f.ended_at.unwrap_or(f.touched), id)
                })
                .min()
                .filter(|(real, ..)| !for_page || !real)
                .map(|(.., id)| id.clone());
            match victim {
                Some(v) => {
                    tracing::warn!(conversation = %v, "widget: too many calls; dropping the oldest feed");
                    inner.feeds.remove(&v);
                }
                None => return None,
            }
        }
        Some(inner.feeds.entry(conversation_id.to_string()).or_insert_with(|| Feed::new(now)))
    }

    /// Drops feeds whose call ended more than the grace period ago.
    fn sweep(&self, inner: &mut Inner, now: Instant) {
        if now.duration_since(inner.swept) < SWEEP_EVERY {
            return;
        }
        inner.swept = now;
        let grace = self.ended_grace;
        inner.feeds.retain(|_, f| f.ended_at.is_none_or(|t| now.duration_since(t) < grace));
    }

    /// The SSE id of an event number.
    pub fn event_id(&self, n: u64) -> String {
        format!("{:08x}-{n}", self.epoch)
    }

    /// Opens a call's feed for a page that last saw `last_event_id` (an id
    /// this hub gave out; anything else starts the page over); a page may
    /// open before the call's first event (the feed then starts empty).
    pub fn subscribe(&self, conversation_id: &str, last_event_id: Option<&str>) -> Subscription {
        let resume = match last_event_id.map(str::trim).filter(|s| !s.is_empty()) {
            None => Some(0),
            Some(s) => s
                .split_once('-')
                .filter(|(epoch, _)| u32::from_str_radix(epoch, 16) == Ok(self.epoch))
                .and_then(|(_, n)| n.parse::<u64>().ok()),
        };
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        let Some(feed) = self.feed_mut(&mut inner, conversation_id, now, true) else {
            // Full of real calls: an empty stream that ends at once (the
            // page retries later) rather than pushing a call out.
            return Subscription {
                replay: Vec::new(),
                live: broadcast::channel(1).1,
                after: 0,
                ended: false,
            };
        };
        let replay = if let Some(after) = resume.filter(|a| *a >= feed.trimmed_through) {
            feed.log.iter().filter(|e| e.id.is_some_and(|id| id > after)).cloned().collect()
        } else {
            feed.snapshot(conversation_id)
        };
        // A page may have read further on another worker of a floor than
        // this hub has yet: what it has seen is not sent again.
        let after = feed.head().max(resume.unwrap_or(0));
        Subscription { replay, live: feed.tx.subscribe(), after, ended: feed.ended_at.is_some() }
    }

    /// The agent users of a call, as last published; `None` for a call the
    /// hub does not know.
    pub fn agents(&self, conversation_id: &str) -> Option<Vec<String>> {
        self.lock().feeds.get(conversation_id).map(|f| f.agents.clone())
    }

    /// Whether the call shows this suggestion.
    pub fn shows(&self, conversation_id: &str, suggestion_id: &str) -> bool {
        self.lock()
            .feeds
            .get(conversation_id)
            .is_some_and(|f| f.shown.iter().any(|s| s.suggestion.suggestion_id == suggestion_id))
    }

    /// Records that a page (of `user`, when known) received a suggestion;
    /// true the first time only, so the engine hears it once per user.
    pub fn acknowledge(&self, conversation_id: &str, suggestion_id: &str, user: Option<&str>) -> bool {
        let mut inner = self.lock();
        let Some(f) = inner.feeds.get_mut(conversation_id) else { return false };
        if !f.shown.iter().any(|s| s.suggestion.suggestion_id == suggestion_id) {
            return false;
        }
        f.acked.insert((suggestion_id.to_string(), user.map(str::to_string)))
    }

    /// Calls with a feed (live or within their grace period).
    pub fn calls(&self) -> usize {
        self.lock().feeds.len()
    }
}

fn remember(seen: &mut (HashSet<String>, VecDeque<String>), id: String) {
    if seen.0.insert(id.clone()) {
        seen.1.push_back(id);
        if seen.1.len() > SEEN_IDS
            && let Some(old) = seen.1.pop_front()
        {
            seen.0.remove(&old);
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
