//! Render snapshots (ratatui TestBackend + insta) of each pane and of the
//! whole screen at 120×40 and 80×24, with fixed time: empty, live calls with
//! matches, editor open, palette open, help, reconnecting. And: no terminal
//! size, however small, makes rendering panic.

use std::time::{Duration, Instant, SystemTime};

use agent_assist::config::keymap::{Action, Keymap};
use agent_assist::domain::{ConnectionState, Hit, PushOutcome, Speaker, StreamEvent, TranscriptEvent};
use agent_assist::engine::{AgentEvent, Effect, Engine, Feedback, Msg, Policy, SearchTiming};
use agent_assist::input::on_action;
use agent_assist::kb::store::StoredArticle;
use agent_assist::net::Dialect;
use agent_assist::ui::state::{Focus, StatusInfo, UiState};
use agent_assist::ui::{View, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

fn hit(id: &str, title: &str, score: f32, text: &str) -> Hit {
    Hit {
        article_id: id.into(),
        title: title.into(),
        url: None,
        score,
        chunk: 0,
        text: text.into(),
        ..Hit::default()
    }
}

fn said(conv: &str, n: u32, speaker: Speaker, text: &str) -> Msg {
    Msg::Stream(StreamEvent::Transcript(TranscriptEvent {
        conversation_id: conv.into(),
        utterance_id: format!("{conv}-{n}"),
        speaker,
        text: text.into(),
        is_final: true,
        offset_ms: None,
    }))
}

/// Two live calls, one with a pushed and a queued suggestion, a push log,
/// and a heartbeat; "now" is `base + 95 s`.
pub fn live_engine(base: Instant) -> Engine {
    let t = |ms: u64| base + Duration::from_millis(ms);
    // Searches follow each line at once: need detection has its own tests.
    let mut e =
        Engine::new(Policy { debounce: Duration::ZERO, need_detection: false, ..Policy::default() }, "snap");
    e.handle(Msg::Stream(StreamEvent::Connection(ConnectionState::Live)), t(0));
    for (conv, queue) in [("c-alpha-0001-aaaa", "support-queue-1"), ("c-bravo-0002-bbbb", "support-queue-1")]
    {
        let started =
            StreamEvent::ConversationStarted { conversation_id: conv.into(), queue_id: Some(queue.into()) };
        e.handle(Msg::Stream(started), t(1_000));
    }
    e.handle(
        said("c-alpha-0001-aaaa", 1, Speaker::Agent, "Thanks for calling Brightwave, this is Maya."),
        t(2_000),
    );
    e.handle(
        said(
            "c-alpha-0001-aaaa",
            2,
            Speaker::Customer,
            "Hi, I forgot my password and now the app says my account is locked.",
        ),
        t(8_000),
    );
    let fx = e.handle(
        said("c-alpha-0001-aaaa", 3, Speaker::Customer, "I tried maybe six times this morning."),
        t(14_000),
    );
    let request = fx
        .iter()
        .find_map(|f| if let Effect::Search { request, .. } = f { Some(*request) } else { None })
        .unwrap();
    let hits = vec![
        hit(
            "account-locked",
            "Unlocking an account after too many sign-in attempts",
            0.71,
            "If the wrong password is entered 5 times in a row, we lock the account for 30 minutes.",
        ),
        hit(
            "password-reset",
            "Resetting a forgotten password",
            0.62,
            "Forgot your password? You can set a new one in a few minutes.",
        ),
        hit(
            "two-factor-setup",
            "Turning on two-step verification",
            0.38,
            "Two-step verification adds a code to every sign-in.",
        ),
    ];
    let timing = SearchTiming { started: t(14_001), finished: t(14_009) };
    e.handle(
        Msg::SearchDone { request, conversation_id: "c-alpha-0001-aaaa".into(), hits, timing },
        t(14_010),
    );
    let sid = e.conversation("c-alpha-0001-aaaa").unwrap().suggestions[0].id.clone();
    let fx =
        e.handle(Msg::Command(agent_assist::engine::Command::Approve { suggestion: sid.clone() }), t(20_000));
    assert!(fx.iter().any(|f| matches!(f, Effect::Push(_))));
    // No ledger in this engine: the decision is durable at once.
    e.handle(
        Msg::Durable {
            pushes: fx
                .iter()
                .filter_map(|f| if let Effect::Push(p) = f { Some(p.clone()) } else { None })
                .collect(),
            commit: None,
        },
        t(20_001),
    );
    let done = PushOutcome {
        suggestion_id: sid.clone(),
        sink: agent_assist::domain::Sink::Webhook,
        conversation_id: "c-alpha-0001-aaaa".into(),
        status: Some(204),
        attempts: 1,
        latency_ms: 42,
        error: None,
    };
    e.handle(Msg::PushDone(done), t(20_042));
    // The agent's page showed it and the agent found it useful.
    e.handle(
        Msg::Agent(AgentEvent::Acknowledged {
            conversation_id: "c-alpha-0001-aaaa".into(),
            suggestion_id: sid.clone(),
            user_id: Some("agent-1".into()),
        }),
        t(20_500),
    );
    e.handle(
        Msg::Agent(AgentEvent::Feedback {
            conversation_id: "c-alpha-0001-aaaa".into(),
            suggestion_id: sid,
            feedback: Feedback::Useful,
            user_id: Some("agent-1".into()),
        }),
        t(25_000),
    );
    e.handle(
        said("c-bravo-0002-bbbb", 1, Speaker::Customer, "My earbuds won't pair with my new phone."),
        t(60_000),
    );
    e.handle(Msg::Stream(StreamEvent::Heartbeat), t(90_000));
    e
}

pub fn catalog() -> Vec<StoredArticle> {
    [
        ("password-reset", "Resetting a forgotten password"),
        ("account-locked", "Unlocking an account"),
        ("device-pairing", "Pairing Wave Buds and Wave Speaker over Bluetooth"),
    ]
    .iter()
    .map(|(id, title)| StoredArticle {
        id: (*id).into(),
        title: (*title).into(),
        url: None,
        tags: vec!["account".into()],
        content: format!("Content of {id}."),
    })
    .collect()
}

fn status() -> StatusInfo {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    StatusInfo {
        dialect: Dialect::Notifications,
        token_expires_at: Some(wall + Duration::from_secs(3 * 3600 + 120)),
        wall_now: wall,
        queue_depth: 0,
        sim_url: Some("http://127.0.0.1:40000".into()),
        widget_url: None,
    }
}

fn screen(engine: &Engine, ui: &UiState, now: Instant, w: u16, h: u16) -> String {
    let keymap = Keymap::default_map();
    let (status, catalog) = (status(), catalog());
    let view = View { engine, ui, keymap: &keymap, status: &status, catalog: &catalog, now, floor: None };
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| render(f, &view)).unwrap();
    terminal.backend().to_string()
}

fn both_sizes(name: &str, engine: &Engine, ui: &UiState, now: Instant) {
    insta::assert_snapshot!(format!("{name}_120x40"), screen(engine, ui, now, 120, 40));
    insta::assert_snapshot!(format!("{name}_80x24"), screen(engine, ui, now, 80, 24));
}

#[test]
fn empty_screen() {
    let base = Instant::now();
    let e = Engine::new(Policy::default(), "snap");
    both_sizes("empty", &e, &UiState::default(), base);
}

#[test]
fn live_calls_with_matches() {
    let base = Instant::now();
    let e = live_engine(base);
    let ui = UiState { focus: Focus::Matches, selected_match: 1, ..UiState::default() };
    both_sizes("live", &e, &ui, base + Duration::from_secs(95));
}

#[test]
fn editor_palette_and_help_overlays() {
    let base = Instant::now();
    let e = live_engine(base);
    let now = base + Duration::from_secs(95);
    let mut ui = UiState { selected_match: 1, ..UiState::default() };
    assert!(on_action(Action::Edit, &mut ui, &e).is_empty());
    both_sizes("editor", &e, &ui, now);
    let mut ui = UiState::default();
    on_action(Action::Palette, &mut ui, &e);
    if let agent_assist::ui::state::Overlay::Palette { query, .. } = &mut ui.overlay {
        query.push_str("pass");
    }
    both_sizes("palette", &e, &ui, now);
    let mut ui = UiState::default();
    on_action(Action::Help, &mut ui, &e);
    both_sizes("help", &e, &ui, now);
}

#[test]
fn reconnecting() {
    let base = Instant::now();
    let mut e = live_engine(base);
    let state = ConnectionState::Reconnecting {
        attempt: 3,
        delay_ms: 4_000,
        reason: "server closed the connection".into(),
    };
    e.handle(Msg::Stream(StreamEvent::Connection(state)), base + Duration::from_secs(94));
    both_sizes("reconnecting", &e, &UiState::default(), base + Duration::from_secs(95));
}

#[test]
fn each_pane_alone() {
    let base = Instant::now();
    let e = live_engine(base);
    let now = base + Duration::from_secs(95);
    let ui = UiState { focus: Focus::Matches, ..UiState::default() };
    let keymap = Keymap::default_map();
    let (status, catalog) = (status(), catalog());
    let view =
        View { engine: &e, ui: &ui, keymap: &keymap, status: &status, catalog: &catalog, now, floor: None };
    type Pane = fn(&mut ratatui::Frame, Rect, &View);
    let panes: [(&str, Pane, u16, u16); 5] = [
        ("pane_conversations", agent_assist::ui::conversations::render, 60, 8),
        ("pane_transcript", agent_assist::ui::transcript::render, 70, 9),
        ("pane_matches", agent_assist::ui::matches::render, 110, 10),
        ("pane_push_log", agent_assist::ui::push_log::render, 90, 5),
        ("pane_status_bar", agent_assist::ui::status_bar::render, 120, 2),
    ];
    for (name, pane, w, h) in panes {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| pane(f, f.area(), &view)).unwrap();
        insta::assert_snapshot!(name, terminal.backend().to_string());
    }
}

#[test]
fn no_terminal_size_makes_rendering_panic() {
    let base = Instant::now();
    let e = live_engine(base);
    let now = base + Duration::from_secs(95);
    let mut overlays: Vec<UiState> = Vec::new();
    for a in [Action::Help, Action::Palette, Action::Edit, Action::Filter, Action::Quit] {
        let mut ui = UiState::default();
        on_action(a, &mut ui, &e);
        overlays.push(ui);
    }
    for ui in &overlays {
        for w in (0..=130).step_by(7) {
            for h in (0..=45).step_by(3) {
                screen(&e, ui, now, w.max(1), h.max(1));
            }
        }
    }
    assert!(screen(&e, &overlays[0], now, 30, 10).contains("needs at least"));
}
