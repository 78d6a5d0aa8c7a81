//! The `cpixd` command line: argument definitions and the offline tools
//! (`speke answer`, `pssh decode`). Each command returns its exit code.
//! The gateway's commands are in `cli/platforms.rs`.

pub mod keys;
pub mod licences;
pub mod log_format;
pub mod log_sink;
pub mod platforms;
pub mod player;
pub mod store;

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

pub(crate) fn io_err(path: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
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
    /// Run the key server (embedded default store when no config is given).
    Serve(ServeArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect and export stored keys (stop the server first: the store is
    /// single-process).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The store backend: PostgreSQL migrations, copying between backends.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// DRM tokens for players (stop the server first).
    #[command(subcommand)]
    Token(player::TokenCommand),
    /// The licence request log, as JSON (stop the server first).
    #[command(subcommand)]
    Licences(licences::LicencesCommand),
    /// Read a secret from standard input and print its hex SHA-256, for
    /// `api_key_sha256` / `password_sha256` in the config.
    HashSecret,
    /// Offline SPEKE tools.
    #[command(subcommand)]
    Speke(SpekeCommand),
    /// PSSH box tools.
    #[command(subcommand)]
    Pssh(PsshCommand),
    /// CPIX document tools.
    #[command(subcommand)]
    Cpix(CpixCommand),
    /// The platform gateway: list documented operations, call one.
    #[command(subcommand)]
    Platforms(platforms::PlatformsCommand),
}

/// Arguments of `cpixd serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see cpixd.example.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the file and CPIXD_LISTEN.
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory, overriding the file and CPIXD_DATA_DIR.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `cpixd config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file; print every error with its key path.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// Where the store is: a config file or a data directory.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Configuration file (for data_dir and master_key_file).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
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
    /// SPEKE version (`1.0`, `2.0`, `2.1`) or `cpix` for generic CPIX;
    /// default: 2.x when `CPIX@version` says 2.3/2.4, else 1.0.
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

/// `cpixd cpix …`
#[derive(Debug, Subcommand)]
pub enum CpixCommand {
    /// Decrypt the content keys of a CPIX document addressed to a private
    /// key; every MAC is verified before any key is printed.
    Decrypt {
        /// Private key: PEM (PKCS#8 or PKCS#1) or PKCS#12 (.pfx/.p12).
        #[arg(long)]
        key: PathBuf,
        /// Password of a PKCS#12 file.
        #[arg(long)]
        password: Option<String>,
        /// The document, or `-` for standard input.
        file: PathBuf,
    },
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
    match s {
        "cpix" => Ok(SpekeVersion::Cpix),
        _ => SpekeVersion::parse(s)
            .ok_or_else(|| format!("unknown profile {s:?} (use 1.0, 2.0, 2.1 or cpix)")),
    }
}

pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
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
    let ctx = FillContext::new(&settings, &*rng);
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

/// Exit code of `config check` for an invalid file (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// Logs to standard error through [`log_sink`]: a request appends its line
/// to a shared buffer and a writer thread writes what gathers; nothing is
/// dropped. The guard writes out the rest when `serve` returns.
fn init_logging(log: &crate::config::LogConfig) -> Result<log_sink::LogSinkGuard, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) =
        log_sink::LogSink::start(std::io::stderr()).map_err(io_err("log writer thread"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    let _ = if log.format == "json" {
        builder.json().try_init()
    } else if ansi {
        builder.try_init()
    } else {
        builder.event_format(log_format::Text::default()).try_init()
    };
    Ok(guard)
}

/// Runs `cpixd serve`.
pub fn serve(args: &ServeArgs) -> Result<i32, CliError> {
    let over = crate::config::Overrides {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
    };
    let config = match crate::config::load(args.config.as_deref(), &over) {
        Ok(c) => c,
        Err(e) => {
            for line in &e.0 {
                eprintln!("config: {line}");
            }
            return Ok(EXIT_CONFIG);
        }
    };
    let gateway = match crate::proxy::Gateway::for_config(&config) {
        Ok(g) => g,
        Err(errors) => {
            for line in &errors {
                eprintln!("config: {line}");
            }
            return Ok(EXIT_CONFIG);
        }
    };
    let _log_guard = init_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cpixd")
        .build()
        .map_err(io_err("tokio runtime"))?;
    match runtime.block_on(crate::server::run(config, gateway)) {
        Ok(()) => Ok(0),
        Err(e) => {
            // Once, through the log (which writes to standard error).
            tracing::error!("cannot serve: {e}");
            Ok(1)
        }
    }
}

/// What `public_base_url` does, and where signalled URLs point now.
pub fn public_base_url_note(c: &crate::config::Config) -> String {
    let how = if c.public_base_url_set {
        "from public_base_url"
    } else {
        "derived from listen because public_base_url is not set; set it to the address players and packagers reach, e.g. https://drm.example.com"
    };
    let base = &c.public_base_url;
    format!(
        "public_base_url: {base} ({how}). Licence, key and certificate URLs in signalling and in /drm/v1/settings start with it: {base}/acquire-license/clearkey, {base}/hls/v1/key/…"
    )
}

/// Runs `cpixd config check`.
pub fn config_check(file: &std::path::Path) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(file).map_err(io_err(file.display().to_string()))?;
    let result = crate::config::access::check_config_file(file, &text)
        .map_err(|e| crate::config::ConfigErrors(vec![e]))
        .and_then(|()| crate::config::parse_file(&text))
        .and_then(|mut f| {
            let env = crate::config::process_env();
            let env_errors = crate::config::apply_env(&mut f, &env);
            if !env_errors.is_empty() {
                return Err(crate::config::ConfigErrors(env_errors));
            }
            // The gateway's problems are reported together with the rest.
            let gateway =
                crate::proxy::Gateway::from_config(f.gateway.as_ref(), f.platforms.as_ref(), &env);
            let mut errors = Vec::new();
            let config = crate::config::validate(f, &Default::default())
                .map_err(|e| errors.extend(e.0))
                .ok();
            let platforms = gateway
                .map_err(|e| errors.extend(e))
                .ok()
                .map(|g| g.platforms().len());
            // What `serve` would refuse beyond the file itself.
            if let Some(c) = &config {
                errors.extend(crate::config::preflight(c, &env));
                if let Err(e) = crate::licence::servers::LicenceServers::for_config(c) {
                    errors.extend(e);
                }
                if let Some(t) = &c.tls {
                    if let Err(e) = crate::server::tls_config(&t.cert_file, &t.key_file) {
                        errors.push(format!("tls: {e}"));
                    }
                }
            }
            match (config, platforms) {
                (Some(c), Some(n)) if errors.is_empty() => Ok((c, n)),
                _ => Err(crate::config::ConfigErrors(errors)),
            }
        });
    match result {
        Ok((c, platforms)) => {
            println!(
                "{}: ok ({} tenant(s), {platforms} platform(s), listen {}, data_dir {})",
                file.display(),
                c.tenants.len(),
                c.listen,
                c.data_dir.display()
            );
            println!("{}", public_base_url_note(&c));
            Ok(0)
        }
        Err(e) => {
            for line in &e.0 {
                eprintln!("{}: {line}", file.display());
            }
            Ok(EXIT_CONFIG)
        }
    }
}

/// The configuration a store command works on.
fn load_config(args: &StoreArgs) -> Result<crate::config::Config, String> {
    let over = crate::config::Overrides {
        listen: None,
        data_dir: args.data_dir.clone(),
    };
    crate::config::load(args.config.as_deref(), &over).map_err(|e| e.to_string())
}

/// The runtime of commands that open the store (the PostgreSQL
/// connections run on it); one per process.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                eprintln!("cannot start the runtime: {e}");
                std::process::exit(1)
            })
    })
}

/// Opens the configured store (never creating an embedded one), with its
/// master keys.
pub(crate) async fn open_backends(
    args: &StoreArgs,
    with_log: bool,
) -> Result<
    (
        crate::config::Config,
        crate::store::Backends,
        crate::keys::Keyring,
    ),
    String,
> {
    let config = load_config(args)?;
    let ring = crate::config::load_keyring(&config)?;
    let backends = crate::store::open(
        &config,
        ring.clone(),
        Arc::new(OsRandom),
        with_log,
        crate::store::Purpose::Existing,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((config, backends, ring))
}

/// Runs `cpixd hash-secret`.
pub fn hash_secret() -> Result<i32, CliError> {
    let mut secret = String::new();
    std::io::stdin()
        .read_to_string(&mut secret)
        .map_err(io_err("standard input"))?;
    if secret.trim().is_empty() {
        eprintln!("no secret on standard input");
        return Ok(EXIT_REJECTED);
    }
    println!("{}", crate::config::hash_secret(&secret));
    Ok(0)
}

/// Runs `cpixd cpix decrypt`: prints `KID BASE64 HEX` per key.
pub fn cpix_decrypt(
    key: &std::path::Path,
    password: Option<&str>,
    file: &std::path::Path,
) -> Result<i32, CliError> {
    let doc_bytes = read_input(file)?;
    let key_bytes = std::fs::read(key).map_err(io_err(key.display().to_string()))?;
    let private = match crate::crypto::x509::load_private_key(&key_bytes, password) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{}: {e}", key.display());
            return Ok(EXIT_REJECTED);
        }
    };
    let doc = match crate::cpix::parse(&doc_bytes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return Ok(EXIT_REJECTED);
        }
    };
    match crate::delivery::decrypt_document(&doc, &private) {
        Ok(keys) => {
            for k in keys {
                let hex: String = k.key.expose().iter().map(|b| format!("{b:02x}")).collect();
                println!("{} {} {hex}", k.kid, crate::b64::encode(k.key.expose()));
            }
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
        Command::Serve(a) => serve(&a),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        Command::Keys(k) => Ok(keys::run(&k)),
        Command::Store(s) => Ok(store::run(&s)),
        Command::Token(player::TokenCommand::Issue(a)) => Ok(player::issue(&a)),
        Command::Licences(l) => Ok(licences::run(&l)),
        Command::HashSecret => hash_secret(),
        Command::Cpix(CpixCommand::Decrypt {
            key,
            password,
            file,
        }) => cpix_decrypt(&key, password.as_deref(), &file),
        Command::Speke(SpekeCommand::Answer(a)) => speke_answer(&a),
        Command::Pssh(PsshCommand::Decode { base64 }) => pssh_decode(&base64),
        Command::Platforms(p) => platforms::run(&p),
    }
}
