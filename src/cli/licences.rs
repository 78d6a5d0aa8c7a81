//! `cpixd licences list` and `cpixd licences stats`: the licence request
//! log for scripts, as JSON (the same items and rows as the
//! `/drm/v1/list-requests` and `/drm/v1/license-count` endpoints). They
//! read `licences.redb` in the data directory: stop the server first.

use super::{load_config, StoreArgs, EXIT_REJECTED};
use crate::clock::parse_date_time;
use crate::licence::log::RequestType;
use crate::licence::stats::{
    self, parse_system, Bucket, Filter, PageRequest, SortField, TimeRange,
};
use clap::{Args, Subcommand};

/// `cpixd licences …`
#[derive(Debug, Subcommand)]
pub enum LicencesCommand {
    /// Print logged player requests, one JSON object per line, oldest first.
    List(ListArgs),
    /// Print licence counts per day, hour or month as a JSON array.
    Stats(StatsArgs),
}

/// The range and tenant every command takes.
#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Start (ISO 8601 or M/D/YYYY, UTC; default: 24 hours before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// End, excluded (default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// Store location.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `cpixd licences list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Tenant, range, store.
    #[command(flatten)]
    pub range: RangeArgs,
    /// Only this DRM system (repeatable).
    #[arg(long)]
    pub system: Vec<String>,
    /// Only this request type (repeatable).
    #[arg(long = "type")]
    pub request_type: Vec<String>,
    /// Only this HTTP status (repeatable).
    #[arg(long)]
    pub status: Vec<u16>,
    /// At most this many entries.
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
}

/// Arguments of `cpixd licences stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Tenant, range, store.
    #[command(flatten)]
    pub range: RangeArgs,
    /// Bucket: day, hour or month.
    #[arg(long, default_value = "day")]
    pub by: String,
}

fn time_range(a: &RangeArgs) -> Result<TimeRange, String> {
    let parse = |name: &str, v: &str| {
        parse_date_time(v)
            .filter(|ms| *ms >= 0)
            .map(|ms| ms as u64)
            .ok_or(format!("--{name}: {v:?} is not a date-time"))
    };
    let to_ms = match &a.to {
        Some(v) => parse("to", v)?,
        None => crate::keys::now_ms(),
    };
    let from_ms = match &a.from {
        Some(v) => parse("from", v)?,
        None => to_ms.saturating_sub(86_400_000),
    };
    if from_ms >= to_ms {
        return Err("--from must be before --to".into());
    }
    Ok(TimeRange { from_ms, to_ms })
}

fn open(args: &StoreArgs) -> Result<std::sync::Arc<dyn crate::licence::log::LicenceLog>, String> {
    let config = load_config(args)?;
    super::runtime()
        .block_on(crate::store::open_licence_log(&config))
        .map_err(|e| e.to_string())
}

/// Runs `cpixd licences …`.
pub fn run(cmd: &LicencesCommand) -> i32 {
    let result = match cmd {
        LicencesCommand::List(a) => list(a),
        LicencesCommand::Stats(a) => stats_cmd(a),
    };
    match result {
        Ok(()) => 0,
        Err((code, e)) => {
            eprintln!("{e}");
            code
        }
    }
}

fn list(a: &ListArgs) -> Result<(), (i32, String)> {
    let reject = |e: String| (EXIT_REJECTED, e);
    let range = time_range(&a.range).map_err(reject)?;
    let filter = Filter {
        systems: a
            .system
            .iter()
            .map(|s| parse_system(s).ok_or(format!("--system: unknown {s:?}")))
            .collect::<Result<_, _>>()
            .map_err(reject)?,
        types: a
            .request_type
            .iter()
            .map(|t| RequestType::parse(t).ok_or(format!("--type: unknown {t:?}")))
            .collect::<Result<_, _>>()
            .map_err(reject)?,
        statuses: a.status.clone(),
        ..Filter::default()
    };
    let log = open(&a.range.store).map_err(|e| (1, e))?;
    let page = PageRequest {
        page: 0,
        limit: a.limit.max(1),
        sort: SortField::RequestTime,
        desc: false,
    };
    let v = stats::list(&*log, &a.range.tenant, range, &filter, page)
        .map_err(|e| (1, e.to_string()))?;
    for item in v["items"].as_array().into_iter().flatten() {
        println!("{item}");
    }
    eprintln!(
        "{} of {} entries",
        v["items"].as_array().map_or(0, Vec::len),
        v["totalCount"]
    );
    Ok(())
}

fn stats_cmd(a: &StatsArgs) -> Result<(), (i32, String)> {
    let reject = |e: String| (EXIT_REJECTED, e);
    let range = time_range(&a.range).map_err(reject)?;
    let bucket = match a.by.as_str() {
        "day" => Bucket::Fixed(86_400_000),
        "hour" => Bucket::Fixed(3_600_000),
        "month" => Bucket::Month,
        other => return Err(reject(format!("--by: {other:?} is not day, hour or month"))),
    };
    let log = open(&a.range.store).map_err(|e| (1, e))?;
    let v = stats::license_count(&*log, &a.range.tenant, range, bucket, &[])
        .map_err(|e| (1, e.to_string()))?;
    println!("{v}");
    Ok(())
}
