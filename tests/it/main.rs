//! The one integration-test binary (one link of FAISS and ONNX Runtime for
//! all of them). Tests here use the real model, real FAISS and real sockets
//! on loopback; `scripts/setup.sh` installs the model first.

// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

mod arch;
mod bench_cli;
mod call_calibration;
mod console_cli;
mod embed_batching;
mod floor;
mod floor_rebalance;
mod floor_tui;
mod floor_widget;
mod hardening_net;
mod hardening_runtime;
mod kb;
mod kb_cli;
mod kb_sources;
mod keys;
mod knowledge;
mod ledger_full;
mod live_reload;
mod nats_support;
mod need;
mod net_push;
mod net_stream;
mod pipeline;
mod props;
mod render;
mod restart;
mod retrieval;
mod sinks;
mod tui;
mod widget;
mod widget_auth;
mod widget_browser;
mod widget_browser_live;
mod widget_pipeline;
