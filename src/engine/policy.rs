//! The engine's live-tunable policy: thresholds, `top_k`, the query window,
//! debounce, anti-spam limits and modes. Every knob has bounds, so a key held
//! down or a bad config value can never push it somewhere meaningless.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the assistant does for a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Suggestions above `push` wait for the operator.
    #[default]
    Manual,
    /// Suggestions above `auto` are sent at once; the rest wait.
    Auto,
    /// No searches, no suggestions.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Auto => "auto",
            Self::Off => "off",
        }
    }

    /// manual → auto → off → manual.
    pub fn next(self) -> Self {
        match self {
            Self::Manual => Self::Auto,
            Self::Auto => Self::Off,
            Self::Off => Self::Manual,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "manual" => Ok(Self::Manual),
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            other => Err(format!("unknown mode `{other}` (expected manual, auto or off)")),
        }
    }
}

/// A tunable setting, for live adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    Show,
    Push,
    Auto,
    TopK,
    Window,
    DebounceMs,
}

/// The engine's policy. Defaults suit the sample KB and MiniLM's score range
/// (related passages score about 0.45–0.75, unrelated ones below 0.35).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Lowest score listed in the console.
    pub show: f32,
    /// Lowest score eligible to send.
    pub push: f32,
    /// Lowest score sent without the operator in auto mode.
    pub auto: f32,
    /// Target precision of pushes (0 = off): when the KB is calibrated
    /// (`kb calibrate`), `push` becomes at start the lowest score at least
    /// this likely to be right.
    pub push_precision: f32,
    /// The same for `auto`.
    pub auto_precision: f32,
    /// Score `auto` is lowered by, for a search's best article, per earlier
    /// search of the call that had the same best article (at most 3) ...
    pub agreement_bonus: f32,
    /// ... and per unit of its lead over the runner-up. 0 and 0 make `auto`
    /// a plain threshold. The defaults are the credits fitted on call
    /// windows for the sample KB (`kb calibrate --calls`).
    pub lead_weight: f32,
    /// Auto mode sends only the latest search's best article, never a
    /// runner-up.
    pub auto_best_only: bool,
    /// Call context ([`super::context`]): a hit ranks by its score plus this
    /// weight times the evidence the call's earlier searches left for its
    /// article (0 = each search on its own) ...
    pub context_weight: f32,
    /// ... which decays by this factor per search ...
    pub context_decay: f32,
    /// ... among this many hits asked of the KB per search (at least
    /// `top_k`; the best `top_k` after re-ranking are kept).
    pub context_pool: usize,
    pub top_k: usize,
    /// Final customer utterances in the query.
    pub window: usize,
    /// Words kept in the query at most (MiniLM sees about 256 word pieces).
    pub window_max_words: usize,
    /// Utterances shorter than this ("okay", "yes please") do not take a
    /// place in the window: they carry nothing to search for.
    pub window_min_words: usize,
    /// Put the agent's speech in the query too.
    pub include_agent: bool,
    /// Judge each final utterance (need detection, `kb need`): small talk,
    /// greetings, thanks, spelled names and numbers read out leave the
    /// query window and, judged within the debounce, start no search. Turned off at start when no
    /// need classifier fits the embedding model.
    pub need_detection: bool,
    #[serde(with = "millis")]
    pub debounce: Duration,
    /// An article pushed to a conversation is not suggested again this soon.
    #[serde(with = "millis")]
    pub cooldown: Duration,
    /// Automatic pushes per conversation per minute, at most.
    pub max_pushes_per_minute: u32,
    /// How long an ended conversation stays on screen.
    #[serde(with = "millis")]
    pub ended_grace: Duration,
    /// A conversation silent this long is treated as ended.
    #[serde(with = "millis")]
    pub idle_timeout: Duration,
    pub mode: Mode,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            show: 0.35,
            push: 0.45,
            auto: 0.50,
            push_precision: 0.0,
            auto_precision: 0.85,
            agreement_bonus: 0.077,
            lead_weight: 1.986,
            auto_best_only: true,
            context_weight: 0.2,
            context_decay: 0.95,
            context_pool: 10,
            top_k: 3,
            window: 2,
            window_max_words: 180,
            window_min_words: 3,
            include_agent: false,
            need_detection: true,
            debounce: Duration::from_millis(500),
            cooldown: Duration::from_secs(600),
            max_pushes_per_minute: 3,
            ended_grace: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            mode: Mode::Manual,
        }
    }
}

/// Durations as integer milliseconds in config files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Steps and bounds for live adjustment.
const SCORE_STEP: f32 = 0.01;
/// `auto` is compared with a score plus the call's credits (context, votes,
/// lead), so a calibrated threshold may lie above 1: only an article the
/// call has spoken for again and again reaches it.
const MAX_AUTO: f32 = 2.0;
const MAX_TOP_K: usize = 20;
const MAX_POOL: usize = 100;
const MAX_WINDOW: usize = 10;
const DEBOUNCE_STEP_MS: u64 = 100;
const MAX_DEBOUNCE_MS: u64 = 10_000;

impl Policy {
    /// Replaces `push` and `auto` by the thresholds reaching their target
    /// precisions, given a function from precision to score (a
    /// calibration); a target that is off or unreachable leaves the raw
    /// threshold. Returns what changed, for the log.
    pub fn apply_precision_targets(&mut self, threshold_for: impl Fn(f64) -> Option<f32>) -> Vec<String> {
        let mut notes = Vec::new();
        for (name, target, slot) in
            [("push", self.push_precision, &mut self.push), ("auto", self.auto_precision, &mut self.auto)]
        {
            if target <= 0.0 {
                continue;
            }
            if let Some(t) = threshold_for(f64::from(target)).filter(|t| t.is_finite()) {
                let t = t.clamp(-1.0, if name == "auto" { MAX_AUTO } else { 1.0 });
                notes.push(format!("{name} {:.3} (precision {target})", t));
                *slot = t;
            }
        }
        notes
    }

    /// Checks the policy is usable; names the first bad setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("show", self.show), ("push", self.push)] {
            if !(v.is_finite() && (-1.0..=1.0).contains(&v)) {
                return Err(format!("`{name}` must be a score between -1 and 1, not {v}"));
            }
        }
        if !(self.auto.is_finite() && (-1.0..=MAX_AUTO).contains(&self.auto)) {
            return Err(format!(
                "`auto` must be between -1 and {MAX_AUTO} (a score plus credits), not {}",
                self.auto
            ));
        }
        for (name, v) in [("push_precision", self.push_precision), ("auto_precision", self.auto_precision)] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(format!("`{name}` must be a precision from 0 (off) to below 1, not {v}"));
            }
        }
        if !(self.agreement_bonus.is_finite() && (0.0..=1.0).contains(&self.agreement_bonus)) {
            return Err(format!(
                "`agreement_bonus` must be a score from 0 to 1, not {}",
                self.agreement_bonus
            ));
        }
        if !(self.lead_weight.is_finite() && (0.0..=10.0).contains(&self.lead_weight)) {
            return Err(format!("`lead_weight` must be from 0 to 10, not {}", self.lead_weight));
        }
        if !(self.context_weight.is_finite() && (0.0..=2.0).contains(&self.context_weight)) {
            return Err(format!("`context_weight` must be from 0 to 2, not {}", self.context_weight));
        }
        if !(self.context_decay.is_finite() && (0.0..=1.0).contains(&self.context_decay)) {
            return Err(format!("`context_decay` must be from 0 to 1, not {}", self.context_decay));
        }
        if !(1..=MAX_POOL).contains(&self.context_pool) {
            return Err(format!(
                "`context_pool` must be between 1 and {MAX_POOL}, not {}",
                self.context_pool
            ));
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(format!("`top_k` must be between 1 and {MAX_TOP_K}, not {}", self.top_k));
        }
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(format!("`window` must be between 1 and {MAX_WINDOW}, not {}", self.window));
        }
        if self.window_max_words < 8 {
            return Err(format!("`window_max_words` must be at least 8, not {}", self.window_max_words));
        }
        if self.debounce > Duration::from_millis(MAX_DEBOUNCE_MS) {
            return Err(format!("`debounce` must be at most {MAX_DEBOUNCE_MS} ms"));
        }
        Ok(())
    }

    /// Hits to ask the KB for per search: the call context's pool when it
    /// is on, never fewer than `top_k`.
    pub fn search_k(&self) -> usize {
        if self.context_weight > 0.0 { self.context_pool.max(self.top_k) } else { self.top_k }
    }

    /// Moves a knob by `steps` (negative lowers it), within its bounds.
    pub fn adjust(&mut self, knob: Knob, steps: i32) {
        let step =
            |v: f32, max: f32| ((v + SCORE_STEP * steps as f32).clamp(0.0, max) * 100.0).round() / 100.0;
        let score = |v: f32| step(v, 1.0);
        let count = |v: usize, max: usize| {
            let n = i64::try_from(v).unwrap_or(0) + i64::from(steps);
            usize::try_from(n.clamp(1, i64::try_from(max).unwrap_or(1))).unwrap_or(1)
        };
        match knob {
            Knob::Show => self.show = score(self.show),
            Knob::Push => self.push = score(self.push),
            Knob::Auto => self.auto = step(self.auto, MAX_AUTO),
            Knob::TopK => self.top_k = count(self.top_k, MAX_TOP_K),
            Knob::Window => self.window = count(self.window, MAX_WINDOW),
            Knob::DebounceMs => {
                let ms = i64::try_from(self.debounce.as_millis()).unwrap_or(0)
                    + i64::from(steps) * DEBOUNCE_STEP_MS as i64;
                self.debounce =
                    Duration::from_millis(u64::try_from(ms.clamp(0, MAX_DEBOUNCE_MS as i64)).unwrap_or(0));
            }
        }
    }
}
