//! The `cpixd` command line: argument definitions and the offline tools
//! (`speke answer`, `pssh decode`). Each command returns its exit code.

use crate::cpix::Limits;
use crate::crypto::{OsRandom, SecureRandom, SeededRandom};
use crate::drm::{self, DrmSettings};
use crate::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use clap::{Args, Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Failures of the command line itself (not of a request it processes).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file or stream could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// What was being read or written.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A settings file is invalid.
    #[error("{path}: {message}")]
    Settings {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::Io { path, source }
}

/// Exit code for a request the engine refused.
pub const EXIT_REJECTED: i32 = 2;

/// cpixd: a DRM key server for SPEKE 1.0/2.0 and DASH-IF CPIX.
#[derive(Debug, Parser)]
#[command(name = "cpixd", version, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offline SPEKE tools.
    #[command(subcommand)]
    Speke(SpekeCommand),
    /// PSSH box tools.
    #[command(subcommand)]
    Pssh(PsshCommand),
}

/// `cpixd speke …`
#[derive(Debug, Subcommand)]
pub enum SpekeCommand {
    /// Print the response a server would give to a SPEKE request, with keys
    /// from an ephemeral in-memory store.
    Answer(AnswerArgs),
}

/// Arguments of `cpixd speke answer`.
#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// Request file, or `-` for standard input.
    pub file: PathBuf,
    /// SPEKE version (`1.0`, `2.0`, `2.1`); default: 2.x when `CPIX@version`
    /// says 2.3/2.4, else 1.0.
    #[arg(long, value_parser = parse_speke_version)]
    pub speke_version: Option<SpekeVersion>,
    /// Seed for reproducible keys and IVs (never use seeded keys for content).
    #[arg(long)]
    pub seed: Option<u64>,
    /// TOML file with DRM settings (`[playready]`, `[widevine]`, `[fairplay]`,
    /// `[clearkey]`, `[hls_aes128]` tables) to preview a tenant's signalling.
    #[arg(long)]
    pub drm_settings: Option<PathBuf>,
}

/// `cpixd pssh …`
#[derive(Debug, Subcommand)]
pub enum PsshCommand {
    /// Print system, version, KIDs and the decoded Widevine/PlayReady data of
    /// a base64 `pssh` box (or PlayReady Object).
    Decode {
        /// Base64 of one or more boxes, or `-` to read it from standard input.
        base64: String,
    },
}

fn parse_speke_version(s: &str) -> Result<SpekeVersion, String> {
    SpekeVersion::parse(s)
        .ok_or_else(|| format!("unknown SPEKE version {s:?} (use 1.0, 2.0 or 2.1)"))
}

fn read_input(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(io_err("standard input"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(io_err(path.display().to_string()))
    }
}

/// Reads a TOML file of DRM settings.
pub fn read_drm_settings(path: &std::path::Path) -> Result<DrmSettings, CliError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path.display().to_string()))?;
    toml::from_str(&text).map_err(|e| CliError::Settings {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Runs `cpixd speke answer`.
pub fn speke_answer(args: &AnswerArgs) -> Result<i32, CliError> {
    let body = read_input(&args.file)?;
    let settings = match &args.drm_settings {
        Some(p) => read_drm_settings(p)?,
        None => DrmSettings::default(),
    };
    let rng: Arc<dyn SecureRandom> = match args.seed {
        Some(seed) => Arc::new(SeededRandom::new(seed)),
        None => Arc::new(OsRandom),
    };
    let version = match args.speke_version {
        Some(v) => v,
        None => detect_version(&body),
    };
    let keys = MemoryKeySource::new(rng.clone());
    let ctx = FillContext {
        settings: &settings,
        rng: &*rng,
    };
    match speke::answer(&body, version, &keys, &ctx, &Limits::default()) {
        Ok(resp) => {
            std::io::stdout()
                .write_all(resp.body.as_bytes())
                .map_err(io_err("standard output"))?;
            Ok(0)
        }
        Err(e) => {
            match e.detail() {
                Some(d) => eprintln!("{} ({d})", e.body()),
                None => eprintln!("{}", e.body()),
            }
            Ok(EXIT_REJECTED)
        }
    }
}

/// The SPEKE version a request asks for by its `CPIX@version`.
fn detect_version(body: &[u8]) -> SpekeVersion {
    match crate::cpix::parse_structure(body, &Default::default()) {
        Ok(doc) => SpekeVersion::for_document_version(doc.version()),
        Err(_) => SpekeVersion::V1_0,
    }
}

/// Runs `cpixd pssh decode`.
pub fn pssh_decode(text: &str) -> Result<i32, CliError> {
    let text = if text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(io_err("standard input"))?;
        s
    } else {
        text.to_owned()
    };
    let Some(bytes) = crate::cpix::decode_base64(text.trim()) else {
        eprintln!("not valid base64");
        return Ok(EXIT_REJECTED);
    };
    match drm::describe_pssh(&bytes) {
        Ok(s) => {
            print!("{s}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(EXIT_REJECTED)
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::Speke(SpekeCommand::Answer(a)) => speke_answer(&a),
        Command::Pssh(PsshCommand::Decode { base64 }) => pssh_decode(&base64),
    }
}
