//! agent-assist: a terminal console that supervises real-time agent assist
//! for Genesys Cloud contact centres.
//!
//! Data flow: live transcripts arrive over a WebSocket (`net`), the engine
//! decides when to search, the knowledge base (`kb`) embeds the recent
//! customer speech and matches it against a FAISS index of articles, and
//! ranked suggestions are pushed to the agent over REST. `cmd` holds the
//! command-line entry points; `paths` decides where files live.

pub mod app;
pub mod audit;
pub mod bench;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod duration;
pub mod engine;
pub mod floor;
pub mod input;
pub mod kb;
pub mod ledger;
pub mod logging;
pub mod net;
pub mod paths;
pub mod runtime;
pub mod sim;
pub mod ui;
pub mod widget;
