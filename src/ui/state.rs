//! View-only state of the console: focus, selections, scroll offsets, the
//! open overlay (help, editor, palette, filter), sort and filter. The engine
//! never sees any of it. Also the derived lists that both rendering and key
//! handling need (visible conversations, match rows, palette results), so
//! the two always agree on what "selected" means.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config as MatcherConfig, Matcher, Utf32Str};
use ratatui_textarea::TextArea;

use crate::domain::Hit;
use crate::engine::{Conversation, Engine, Suggestion, SuggestionState};
use crate::kb::store::StoredArticle;
use crate::net::Dialect;

/// Which pane keys like up/down act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Conversations,
    Transcript,
    Matches,
    PushLog,
}

impl Focus {
    pub fn next(self) -> Self {
        match self {
            Self::Conversations => Self::Matches,
            Self::Matches => Self::Transcript,
            Self::Transcript => Self::PushLog,
            Self::PushLog => Self::Conversations,
        }
    }
    pub fn prev(self) -> Self {
        match self {
            Self::Conversations => Self::PushLog,
            Self::Matches => Self::Conversations,
            Self::Transcript => Self::Matches,
            Self::PushLog => Self::Transcript,
        }
    }
}

/// Conversation list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Started,
    Activity,
    Suggestions,
}

impl SortBy {
    pub fn next(self) -> Self {
        match self {
            Self::Started => Self::Activity,
            Self::Activity => Self::Suggestions,
            Self::Suggestions => Self::Started,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Activity => "activity",
            Self::Suggestions => "suggestions",
        }
    }
}

/// What is being edited: an existing suggestion, or a match not yet one.
#[derive(Debug, Clone, PartialEq)]
pub struct EditTarget {
    pub conversation: String,
    pub suggestion: Option<String>,
    pub article_id: String,
    pub title: String,
}

/// An overlay on top of the dashboard.
#[derive(Debug, Default)]
pub enum Overlay {
    #[default]
    None,
    Help,
    Editor {
        target: EditTarget,
        text: Box<TextArea<'static>>,
    },
    Palette {
        query: String,
        selected: usize,
    },
    Filter,
}

/// Facts for the status bar that live outside the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusInfo {
    pub dialect: Dialect,
    pub token_expires_at: Option<SystemTime>,
    pub wall_now: SystemTime,
    /// Messages waiting in the runtime's channel.
    pub queue_depth: usize,
    /// The simulator's address, in the demo.
    pub sim_url: Option<String>,
    /// The agent widget's address, when it is served.
    pub widget_url: Option<String>,
}

/// What a floor console knows beyond its mirror of the workers' engines:
/// the link to the floor and who owns what. Absent for a local engine.
#[derive(Debug, Clone, Default)]
pub struct FloorInfo {
    pub link_up: bool,
    /// When the link entered its current state.
    pub link_since: Option<Instant>,
    /// Conversation → the worker whose events it last came in.
    pub owners: HashMap<String, String>,
    /// Queue → the worker holding its lease, as last heard.
    pub queue_owners: BTreeMap<String, String>,
    /// Workers heard from, and when last.
    pub workers: BTreeMap<String, Instant>,
    /// Commands sent and not answered yet.
    pub pending: usize,
}

/// A worker counts as present while heard from this recently (they
/// publish metrics every 5 s).
pub const WORKER_SILENCE: Duration = Duration::from_secs(15);

impl FloorInfo {
    /// Workers heard from within [`WORKER_SILENCE`] of `now`.
    pub fn workers_present(&self, now: Instant) -> usize {
        self.workers.values().filter(|t| now.saturating_duration_since(**t) < WORKER_SILENCE).count()
    }
}

/// A worker's member id without its role prefix and host
/// (`worker-host-4242-0a1b` → `4242-0a1b`), for narrow columns.
pub fn short_worker(id: &str) -> &str {
    let mut cut = id.rmatch_indices('-').map(|(i, _)| i);
    match (cut.next(), cut.next()) {
        (Some(_), Some(i)) => &id[i + 1..],
        _ => id,
    }
}

/// The console's own state.
#[derive(Debug)]
pub struct UiState {
    pub focus: Focus,
    pub selected_conversation: Option<String>,
    pub selected_match: usize,
    /// Lines scrolled up from the bottom of the transcript.
    pub transcript_scroll: usize,
    /// Entries scrolled up from the newest push.
    pub push_log_scroll: usize,
    pub overlay: Overlay,
    pub filter: String,
    pub sort: SortBy,
    pub quit: bool,
    /// Asked to open this call's agent-widget page (the app loop does).
    pub open_widget: Option<String>,
    /// The widget page last opened, shown on the hint line to copy.
    pub widget_link: Option<String>,
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            focus: Focus::Conversations,
            selected_conversation: None,
            selected_match: 0,
            transcript_scroll: 0,
            push_log_scroll: 0,
            overlay: Overlay::None,
            filter: String::new(),
            sort: SortBy::Started,
            quit: false,
            open_widget: None,
            widget_link: None,
        }
    }
}

/// The conversations shown, filtered and sorted; ended ones last.
pub fn visible_conversations<'a>(engine: &'a Engine, ui: &UiState) -> Vec<&'a Conversation> {
    let needle = ui.filter.to_lowercase();
    let mut list: Vec<&Conversation> = engine
        .conversations()
        .filter(|c| {
            needle.is_empty()
                || c.id.to_lowercase().contains(&needle)
                || c.queue_id.as_deref().is_some_and(|q| q.to_lowercase().contains(&needle))
                || c.matches
                    .iter()
                    .any(|h| h.article_id.contains(&needle) || h.title.to_lowercase().contains(&needle))
        })
        .collect();
    list.sort_by(|a, b| {
        let ended = a.ended_at.is_some().cmp(&b.ended_at.is_some());
        let key = match ui.sort {
            SortBy::Started => a.started_at.cmp(&b.started_at),
            SortBy::Activity => b.last_activity.cmp(&a.last_activity),
            SortBy::Suggestions => b.suggestions.len().cmp(&a.suggestions.len()),
        };
        ended.then(key).then_with(|| a.id.cmp(&b.id))
    });
    list
}

/// The selected conversation: the chosen one if still visible, else the first.
pub fn selected<'a>(engine: &'a Engine, ui: &UiState) -> Option<&'a Conversation> {
    let list = visible_conversations(engine, ui);
    ui.selected_conversation
        .as_deref()
        .and_then(|id| list.iter().copied().find(|c| c.id == id))
        .or(list.first().copied())
}

/// One row of the matches pane: a hit and the suggestion made of it, if any.
#[derive(Debug, Clone, Copy)]
pub struct MatchRow<'a> {
    pub hit: &'a Hit,
    pub suggestion: Option<&'a Suggestion>,
}

/// The current matches of a conversation with their suggestions.
pub fn match_rows(c: &Conversation) -> Vec<MatchRow<'_>> {
    c.matches
        .iter()
        .map(|hit| {
            // Prefer a live suggestion; else the newest one for the article.
            let of_article = || c.suggestions.iter().rev().filter(|s| s.article_id == hit.article_id);
            let live = of_article().find(|s| s.state.is_open() || s.state == SuggestionState::Sending);
            MatchRow { hit, suggestion: live.or_else(|| of_article().next()) }
        })
        .collect()
}

/// Palette results for a query: (article index, score), best first.
pub fn palette_results(catalog: &[StoredArticle], query: &str) -> Vec<usize> {
    if query.trim().is_empty() {
        return (0..catalog.len()).collect();
    }
    let pattern = Pattern::parse(query, CaseMatching::Ignore, Normalization::Smart);
    let mut matcher = Matcher::new(MatcherConfig::DEFAULT);
    let mut buf = Vec::new();
    let mut scored: Vec<(usize, u32)> = catalog
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let hay = format!("{} {} {}", a.title, a.id, a.tags.join(" "));
            pattern.score(Utf32Str::new(&hay, &mut buf), &mut matcher).map(|s| (i, s))
        })
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().map(|(i, _)| i).collect()
}

/// Human duration: `42s`, `3m05s`, `1h02m`.
pub fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `now - then`, as a short age.
pub fn age(now: Instant, then: Instant) -> String {
    short_duration(now.saturating_duration_since(then))
}
