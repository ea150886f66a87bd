//! `agent-assist bench ...`: runs a benchmark and prints its report.

use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use crate::bench::{self, e2e, index, kb, load, widgets};
use crate::cli::BenchCommand;
use crate::kb::HnswParams;
use crate::paths::AppPaths;

fn secs(name: &str, v: f64) -> Result<Duration> {
    crate::duration::from_secs_f64(v)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| eyre!("--{name} must be a positive number of seconds (and not absurdly large)"))
}

pub fn run(cmd: BenchCommand, paths: &AppPaths) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Kb { articles, records, queries, export_texts, strategies, budgets, json } => {
            if budgets.contains(&0) {
                return Err(eyre!("--budgets must be positive numbers of word pieces"));
            }
            let opts = kb::Options {
                generated_articles: articles,
                records,
                queries: queries.max(1),
                export_texts,
                strategies,
                budgets,
            };
            let r = kb::run(paths, &opts)?;
            bench::print(&r, json, kb::print_table);
        }
        BenchCommand::Index { vectors, kind, dim, queries, hnsw_m, ef_construction, ef_search, json } => {
            if vectors == 0 || dim == 0 || queries == 0 {
                return Err(eyre!("--vectors, --dim and --queries must be at least 1"));
            }
            let hnsw = HnswParams { m: hnsw_m, ef_construction, ef_search };
            let r = index::run(&index::Options { vectors, kind, dim, queries, hnsw })?;
            bench::print(&r, json, index::print_table);
        }
        BenchCommand::E2e {
            speed,
            concurrency,
            dialect,
            calls,
            window_max_words,
            no_need_detection,
            threads,
            default_policy,
            reload_every,
            json,
        } => {
            // The simulator rejects a bad speed; the config, a bad window.
            let opts = e2e::Options {
                speed,
                concurrency: concurrency.max(1),
                dialect,
                calls,
                window_max_words,
                need_detection: !no_need_detection,
                threads,
                default_policy,
                reload_every,
            };
            let r = e2e::run(paths, &opts)?;
            bench::print(&r, json, e2e::print_table);
        }
        BenchCommand::Replay { opts, json } => {
            let r = crate::bench::replay::run(paths, &opts)?;
            bench::print(&r, json, crate::bench::replay::print_table);
        }
        BenchCommand::Load {
            conversations,
            every_s,
            duration_s,
            debounce_ms,
            find_max,
            target_p99_ms,
            widgets,
            nats,
            workers,
            json,
        } => {
            if widgets > 0 && (find_max || nats.is_some()) {
                return Err(eyre!(
                    "--widgets compares one load with and without pages: drop --find-max and --nats"
                ));
            }
            if workers > 8 {
                return Err(eyre!("--workers: at most 8 (each worker holds its own model and index)"));
            }
            let opts = load::Options {
                conversations: conversations.max(1),
                every: secs("every-s", every_s)?,
                duration: secs("duration-s", duration_s)?,
                debounce: Duration::from_millis(debounce_ms),
                find_max,
                target_p99: Duration::from_millis(target_p99_ms.max(1)),
                widgets,
                nats,
                workers: workers.max(1),
            };
            let r = load::run(paths, &opts)?;
            bench::print(&r, json, load::print_table);
        }
        BenchCommand::Widgets { streams, rounds, every_ms, json } => {
            if streams == 0 || rounds == 0 {
                return Err(eyre!("--streams and --rounds must be at least 1"));
            }
            let opts = widgets::Options { streams, rounds, every: Duration::from_millis(every_ms) };
            let r = widgets::run(&opts)?;
            bench::print(&r, json, widgets::print_table);
        }
    }
    Ok(ExitCode::SUCCESS)
}
