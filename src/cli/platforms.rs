//! `cpixd platforms list [PLATFORM]` prints the gateway's catalogue;
//! `cpixd platforms call PLATFORM OPERATION` calls one documented operation
//! through the same client, credentials and retries as `/proxy`, for
//! operators' scripts: the status goes to standard error, the body streams
//! to standard output.

use super::{io_err, CliError, EXIT_CONFIG, EXIT_REJECTED};
use crate::proxy::routes::{self, Catalogue};
use crate::proxy::Gateway;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Exit code of `platforms call` when the upstream answered with an error.
pub const EXIT_UPSTREAM_ERROR: i32 = 1;

/// `cpixd platforms …`
#[derive(Debug, Subcommand)]
pub enum PlatformsCommand {
    /// Print the documented operations of every platform, or of one:
    /// method, path template, host key, replay class and name.
    List {
        /// cloudvideokit, kinescope, apivideo, pixop or 5centscdn.
        platform: Option<String>,
    },
    /// Call one operation with the configured credentials.
    Call(CallArgs),
}

/// Arguments of `cpixd platforms call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The platform.
    pub platform: String,
    /// The operation's name (see `platforms list`).
    pub operation: String,
    /// A path parameter (`video_id=…`), or a query parameter when the path
    /// has no such name; repeatable. An alternation such as
    /// `chat(.json|.csv|.txt)` takes `suffix=.csv`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Request body from a file, streamed (`-`: standard input, read
    /// whole); JSON operations get `Content-Type: application/json` unless
    /// a header says otherwise.
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// An extra request header (`Name: value`); repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Configuration file with the `[platforms.*]` sections (the
    /// `CPIXD_<PLATFORM>_*` environment also works without one).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `cpixd platforms …`.
pub fn run(cmd: &PlatformsCommand) -> Result<i32, CliError> {
    match cmd {
        PlatformsCommand::List { platform } => list(platform.as_deref()),
        PlatformsCommand::Call(args) => call(args),
    }
}

fn print_catalogue(c: &Catalogue, out: &mut impl Write) -> std::io::Result<()> {
    let hosts: std::collections::BTreeSet<&str> =
        c.operations.iter().map(|o| o.host.as_str()).collect();
    writeln!(
        out,
        "{}: {} operations (hosts: {})",
        c.platform,
        c.operations.len(),
        hosts.into_iter().collect::<Vec<_>>().join(", ")
    )?;
    let width = c
        .operations
        .iter()
        .map(|o| o.path_text().len())
        .max()
        .unwrap_or(0);
    for o in &c.operations {
        writeln!(
            out,
            "  {:<6} {:<width$}  {:<10} retry={:<3}  {}{}",
            o.method.as_str(),
            o.path_text(),
            o.host,
            o.retry.as_str(),
            o.name,
            if o.credential { "  (credential)" } else { "" },
        )?;
    }
    Ok(())
}

fn list(platform: Option<&str>) -> Result<i32, CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let chosen: Vec<&Catalogue> = match platform {
        Some(p) => match routes::catalogue(p) {
            Some(c) => vec![c],
            None => {
                eprintln!(
                    "no platform {p:?}; known: {}",
                    routes::platform_names().collect::<Vec<_>>().join(", ")
                );
                return Ok(EXIT_REJECTED);
            }
        },
        None => routes::catalogues().iter().collect(),
    };
    for (i, c) in chosen.iter().enumerate() {
        if i > 0 {
            writeln!(out).map_err(io_err("standard output"))?;
        }
        print_catalogue(c, &mut out).map_err(io_err("standard output"))?;
    }
    Ok(0)
}

/// The gateway of `--config` (or of the environment alone).
fn gateway(config: Option<&std::path::Path>) -> Result<Gateway, Vec<String>> {
    let env = crate::config::process_env();
    let (gateway, platforms) = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![format!("{}: {e}", path.display())])?;
            let f = crate::config::parse_file(&text).map_err(|e| e.0)?;
            (f.gateway, f.platforms)
        }
        None => (None, None),
    };
    Gateway::from_config(gateway.as_ref(), platforms.as_ref(), &env)
}

fn parse_params(items: &[String]) -> Result<BTreeMap<String, String>, String> {
    items
        .iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("--param {p:?}: expected NAME=VALUE"))
        })
        .collect()
}

fn parse_headers(items: &[String]) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    for item in items {
        let (name, value) = item
            .split_once(':')
            .ok_or_else(|| format!("--header {item:?}: expected NAME: VALUE"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("--header {item:?}: bad header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("--header {item:?}: bad header value"))?;
        h.append(name, value);
    }
    Ok(h)
}

/// A file streamed as a request body of known length, 64 KiB at a time.
struct FileBody {
    file: tokio::fs::File,
    buf: Box<[u8]>,
    remaining: u64,
}

impl http_body::Body for FileBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return std::task::Poll::Ready(None);
        }
        let mut read = tokio::io::ReadBuf::new(&mut this.buf);
        if let Err(e) = std::task::ready!(tokio::io::AsyncRead::poll_read(
            std::pin::Pin::new(&mut this.file),
            cx,
            &mut read
        )) {
            return std::task::Poll::Ready(Some(Err(e)));
        }
        let filled = read.filled();
        if filled.is_empty() {
            let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file shrank");
            return std::task::Poll::Ready(Some(Err(e)));
        }
        let n = (filled.len() as u64).min(this.remaining);
        this.remaining -= n;
        let data = bytes::Bytes::copy_from_slice(&filled[..n as usize]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

fn call(args: &CallArgs) -> Result<i32, CliError> {
    let gateway = match gateway(args.config.as_deref()) {
        Ok(g) => g,
        Err(errors) => {
            for e in errors {
                eprintln!("config: {e}");
            }
            return Ok(EXIT_CONFIG);
        }
    };
    let (params, mut headers) = match (parse_params(&args.params), parse_headers(&args.headers)) {
        (Ok(p), Ok(h)) => (p, h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return Ok(EXIT_REJECTED);
        }
    };
    let body = match &args.body {
        None => Body::empty(),
        Some(path) => {
            let is_json = routes::catalogue(&args.platform)
                .and_then(|c| c.operation(&args.operation))
                .is_some_and(|o| o.body == "json");
            if is_json && !headers.contains_key(header::CONTENT_TYPE) {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            if path.as_os_str() == "-" {
                Body::from(super::read_input(path)?)
            } else {
                let file = std::fs::File::open(path).map_err(io_err(path.display().to_string()))?;
                let len = file
                    .metadata()
                    .map_err(io_err(path.display().to_string()))?
                    .len();
                Body::new(FileBody {
                    file: tokio::fs::File::from_std(file),
                    buf: vec![0; 64 << 10].into_boxed_slice(),
                    remaining: len,
                })
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("tokio runtime"))?;
    runtime.block_on(async {
        let resp = match gateway
            .call(&args.platform, &args.operation, &params, headers, body)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return Ok(EXIT_REJECTED);
            }
        };
        let status = resp.status();
        eprintln!(
            "HTTP {} ({} {})",
            status,
            args.platform,
            resp.headers()
                .get("x-cpixd-operation")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&args.operation)
        );
        let stdout = std::io::stdout();
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("the answer broke off: {e}");
                    return Ok(EXIT_UPSTREAM_ERROR);
                }
            };
            if let Ok(data) = frame.into_data() {
                stdout
                    .lock()
                    .write_all(&data)
                    .map_err(io_err("standard output"))?;
            }
        }
        stdout.lock().flush().map_err(io_err("standard output"))?;
        Ok(if status.is_success() || status.is_redirection() {
            0
        } else {
            EXIT_UPSTREAM_ERROR
        })
    })
}
