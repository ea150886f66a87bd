//! `agent-assist kb sync genesys`: lists the org's knowledge bases, or
//! pulls one into a local source and says what changed.

use std::path::Path;
use std::process::ExitCode;

use color_eyre::eyre::Result;
use serde_json::json;

use crate::cli::GenesysSyncArgs;
use crate::config::Config;
use crate::kb::genesys::{self, SyncOptions, SyncReport};
use crate::paths::AppPaths;

pub fn genesys(args: &GenesysSyncArgs, config_file: Option<&Path>, paths: &AppPaths) -> Result<ExitCode> {
    let config = Config::load(config_file, &paths.config_file(), &|k| std::env::var(k).ok())?;
    let client = genesys::client(&config)?;
    let rt = tokio::runtime::Runtime::new()?;
    let Some(id) = args.knowledge_base.as_deref().map(str::trim).filter(|i| !i.is_empty()) else {
        let listed = rt.block_on(client.knowledge_bases()).map_err(genesys::SyncError::from)?;
        if args.json {
            println!("{}", json!({ "knowledge_bases": listed.entities }));
            return Ok(ExitCode::SUCCESS);
        }
        if listed.entities.is_empty() {
            println!("No knowledge bases visible to this OAuth client.");
        }
        for kb in &listed.entities {
            let articles = kb.article_count.map_or_else(String::new, |n| format!("{n} articles"));
            let lang = kb.core_language.as_deref().unwrap_or("");
            println!("{}  {:<32} {:<6} {articles}", kb.id, kb.name, lang);
        }
        if !listed.entities.is_empty() {
            println!("\nPull one with: agent-assist kb sync genesys --knowledge-base ID");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let opts = SyncOptions {
        knowledge_base_id: id.to_string(),
        include_drafts: args.include_drafts,
        labels: args.labels.clone(),
    };
    let report = rt.block_on(genesys::sync(&client, &paths.data_dir, &opts))?;
    print_report(&report, args.json);
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &SyncReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    let kind = if r.incremental { "incremental" } else { "full" };
    println!(
        "Synced knowledge base {} ({kind}): {} documents, +{} ~{} −{} ({} unchanged) in {:.1} s.",
        r.knowledge_base_id, r.documents, r.added, r.changed, r.removed, r.unchanged, r.seconds
    );
    if r.skipped_empty > 0 {
        println!("  {} documents without any text were left out.", r.skipped_empty);
    }
    println!("  fetched {} documents over {} listing pages", r.fetched, r.pages);
    println!("  source  {}", r.source.display());
    println!(
        "Use it with `--kb genesys:{}` or `paths = [\"genesys:{}\"]` under [kb].",
        r.knowledge_base_id, r.knowledge_base_id
    );
}
