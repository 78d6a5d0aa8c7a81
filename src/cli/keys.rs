//! `cpixd keys …`: list and show stored keys, export them (CPIX encrypted
//! to a recipient or clear, ClearKey JWK, mp4decrypt, ffmpeg, Shaka
//! Packager), import a CPIX document, and rewrap every record under the
//! newest master key. Works on either backend; on the embedded one, stop
//! the server on that data directory first.

use super::{open_backends, runtime, StoreArgs, EXIT_REJECTED};
use crate::crypto::OsRandom;
use crate::ids::KeyId;
use crate::keys::{next_records, KeyMeta, KeyStore, RawWrite, RecordId, StoredKey};
use crate::portability::{self, Format};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Keys listed per store round trip.
const PAGE: usize = 1000;

/// `cpixd keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List key metadata (never key values).
    List {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Only keys of this content id.
        #[arg(long)]
        content_id: Option<String>,
        /// Store location.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one key's metadata; the key itself only with --reveal.
    Show {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Key id (any spelling).
        #[arg(long)]
        kid: String,
        /// Print the content key and IV.
        #[arg(long)]
        reveal: bool,
        /// Store location.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write keys for another system: `cpix` (CPIX 2.3 encrypted to
    /// --recipient), `cpix-clear`, `clearkey-jwk`, `mp4decrypt`, `ffmpeg`,
    /// `shaka` (Shaka Packager raw-key flags). Every format but `cpix`
    /// holds keys in the clear and needs --reveal.
    Export(ExportArgs),
    /// Store the keys of a CPIX document (clear, or encrypted to --key)
    /// under the binding rules; prints per KID: new, identical or conflict.
    Import(ImportArgs),
    /// Re-seal every record under the newest master key (online,
    /// resumable); afterwards older master keys can leave the key file.
    Rewrap {
        /// Store location.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Arguments of `cpixd keys export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Export the keys of this content id.
    #[arg(long, conflicts_with = "kid")]
    pub content_id: Option<String>,
    /// Export these KIDs (any spelling; repeat the flag).
    #[arg(long)]
    pub kid: Vec<String>,
    /// Output format.
    #[arg(long, default_value = "shaka")]
    pub format: String,
    /// Recipient certificate (PEM or DER) for `--format cpix`.
    #[arg(long)]
    pub recipient: Option<PathBuf>,
    /// Allow a format that writes keys in the clear.
    #[arg(long)]
    pub reveal: bool,
    /// Write to this file (created 0600) instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Store location.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `cpixd keys import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CPIX document, or `-` for standard input.
    pub file: PathBuf,
    /// Tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Content id to bind the keys to (default: the document's contentId).
    #[arg(long)]
    pub content_id: Option<String>,
    /// Private key (PEM or PKCS#12) the document's keys are encrypted to.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Password of a PKCS#12 key.
    #[arg(long)]
    pub password: Option<String>,
    /// Store location.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn print_meta(m: &KeyMeta) {
    println!(
        "{}  content_id={:?} protocol={} scheme={} issued={} requester={} master_key=v{} iv={}",
        m.kid,
        m.content_id,
        m.protocol,
        m.scheme.as_deref().unwrap_or("-"),
        crate::clock::rfc3339_millis(m.first_issued_ms),
        m.requester,
        m.master_key_version,
        if m.has_iv { "yes" } else { "no" }
    );
}

/// Every key's metadata of a tenant (or of one content id), page by page.
pub async fn list_all(
    store: &dyn KeyStore,
    tenant: &str,
    content_id: Option<&str>,
) -> Result<Vec<KeyMeta>, crate::keys::StoreError> {
    let mut out: Vec<KeyMeta> = Vec::new();
    loop {
        let page = store
            .list(tenant, content_id, out.last().map(|m| m.kid), PAGE)
            .await?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// Runs `cpixd keys …`.
pub fn run(cmd: &KeysCommand) -> i32 {
    match runtime().block_on(run_async(cmd)) {
        Ok(code) => code,
        Err((code, e)) => {
            eprintln!("{e}");
            code
        }
    }
}

async fn run_async(cmd: &KeysCommand) -> Result<i32, (i32, String)> {
    let fail = |e: crate::keys::StoreError| (1, e.to_string());
    let reject = |e: String| (EXIT_REJECTED, e);
    match cmd {
        KeysCommand::List {
            tenant,
            content_id,
            store,
        } => {
            let (_, b, _) = open_backends(store, false).await.map_err(|e| (1, e))?;
            let list = list_all(&*b.keys, tenant, content_id.as_deref())
                .await
                .map_err(fail)?;
            list.iter().for_each(print_meta);
            eprintln!("{} key(s)", list.len());
            Ok(0)
        }
        KeysCommand::Show {
            tenant,
            kid,
            reveal,
            store,
        } => {
            let kid = KeyId::parse_any(kid).map_err(|e| reject(format!("--kid: {e}")))?;
            let (_, b, _) = open_backends(store, false).await.map_err(|e| (1, e))?;
            match b.keys.get(tenant, kid).await.map_err(fail)? {
                Some(k) => {
                    print_meta(&k.meta);
                    if *reveal {
                        let hex: String =
                            k.key.expose().iter().map(|b| format!("{b:02x}")).collect();
                        println!("key: {hex} (base64 {})", crate::b64::encode(k.key.expose()));
                        if let Some(iv) = k.iv {
                            let iv_hex: String = iv.iter().map(|b| format!("{b:02x}")).collect();
                            println!("iv:  {iv_hex}");
                        }
                    }
                    Ok(0)
                }
                None => Err((1, format!("no key {kid} for tenant {tenant:?}"))),
            }
        }
        KeysCommand::Export(a) => export(a).await,
        KeysCommand::Import(a) => import(a).await,
        KeysCommand::Rewrap { store } => rewrap(store).await,
    }
}

async fn export(a: &ExportArgs) -> Result<i32, (i32, String)> {
    let reject = |e: String| (EXIT_REJECTED, e);
    let format = Format::parse(&a.format).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|(n, _)| *n).collect();
        reject(format!(
            "--format: {:?} is not a format ({})",
            a.format,
            names.join(", ")
        ))
    })?;
    // Shaka Packager's flags are for a packager the operator runs: they were
    // printed before --reveal existed, so `shaka` keeps working without it.
    if format.reveals_keys() && format != Format::Shaka && !a.reveal {
        return Err(reject(format!(
            "--format {} writes keys in the clear: add --reveal",
            a.format
        )));
    }
    if a.content_id.is_none() && a.kid.is_empty() {
        return Err(reject("select keys with --content-id C or --kid K".into()));
    }
    let kids = a
        .kid
        .iter()
        .map(|k| KeyId::parse_any(k).map_err(|e| reject(format!("--kid {k:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let recipient = match &a.recipient {
        Some(p) => Some(std::fs::read(p).map_err(|e| reject(format!("{}: {e}", p.display())))?),
        None => None,
    };
    let (_, b, _) = open_backends(&a.store, false).await.map_err(|e| (1, e))?;
    let mut keys: Vec<StoredKey> = Vec::new();
    let fail = |e: crate::keys::StoreError| (1, e.to_string());
    if let Some(cid) = &a.content_id {
        for m in list_all(&*b.keys, &a.tenant, Some(cid))
            .await
            .map_err(fail)?
        {
            if let Some(k) = b.keys.get(&a.tenant, m.kid).await.map_err(fail)? {
                keys.push(k);
            }
        }
        if keys.is_empty() {
            return Err((
                1,
                format!("no keys for content {cid:?} of tenant {:?}", a.tenant),
            ));
        }
    }
    for kid in kids {
        match b.keys.get(&a.tenant, kid).await.map_err(fail)? {
            Some(k) => keys.push(k),
            None => return Err((1, format!("no key {kid} for tenant {:?}", a.tenant))),
        }
    }
    let text = portability::export(&keys, format, recipient.as_deref(), &OsRandom)
        .map_err(|e| reject(e.to_string()))?;
    if format.reveals_keys() {
        eprintln!(
            "{} key(s) in the clear: keep this output private",
            keys.len()
        );
    }
    match &a.output {
        Some(p) => crate::config::write_secret_file(p, &format!("{text}\n"))
            .map_err(|e| (1, format!("{}: {e}", p.display())))?,
        None => println!("{text}"),
    }
    Ok(0)
}

async fn import(a: &ImportArgs) -> Result<i32, (i32, String)> {
    let reject = |e: String| (EXIT_REJECTED, e);
    let bytes = super::read_input(&a.file).map_err(|e| reject(e.to_string()))?;
    let private = match &a.key {
        Some(p) => {
            let raw = std::fs::read(p).map_err(|e| reject(format!("{}: {e}", p.display())))?;
            Some(
                crate::crypto::x509::load_private_key(&raw, a.password.as_deref())
                    .map_err(|e| reject(format!("{}: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let (doc_cid, keys) =
        portability::read_document(&bytes, private.as_ref()).map_err(|e| reject(e.to_string()))?;
    let content_id = a
        .content_id
        .clone()
        .or(doc_cid)
        .ok_or_else(|| reject("the document has no contentId: give --content-id".into()))?;
    crate::ids::ContentId::new(&content_id).map_err(|e| reject(format!("content id: {e}")))?;
    let (_, b, ring) = open_backends(&a.store, false).await.map_err(|e| (1, e))?;
    let outcomes = portability::import(
        &*b.keys,
        &ring,
        &OsRandom,
        &a.tenant,
        &content_id,
        "cli:import",
        &keys,
    )
    .await
    .map_err(|e| (1, e.to_string()))?;
    let mut conflicts = 0;
    for (kid, o) in &outcomes {
        match o {
            portability::ImportOutcome::Conflict(why) => {
                conflicts += 1;
                println!("{kid} conflict ({why})");
            }
            o => println!("{kid} {}", o.name()),
        }
    }
    Ok(if conflicts > 0 { EXIT_REJECTED } else { 0 })
}

/// Records rewrapped per transaction.
const REWRAP_BATCH: usize = 256;

async fn rewrap(store: &StoreArgs) -> Result<i32, (i32, String)> {
    let (_, b, ring) = open_backends(store, false).await.map_err(|e| (1, e))?;
    let fail = |e: crate::keys::StoreError| (1, e.to_string());
    let (mut seen, mut rewrapped, mut changed_meanwhile) = (0u64, 0u64, 0u64);
    let mut after: Option<RecordId> = None;
    loop {
        let page = next_records(&*b.keys, &mut after, REWRAP_BATCH)
            .await
            .map_err(fail)?;
        if page.is_empty() {
            break;
        }
        seen += page.len() as u64;
        let mut writes = Vec::new();
        for r in &page {
            if let Some(new) = crate::keys::rewrap(&ring, &OsRandom, r).map_err(fail)? {
                crate::keys::verify_raw(&ring, &new).map_err(fail)?;
                writes.push(RawWrite {
                    record: new,
                    expected: Some(r.bytes.clone()),
                });
            }
        }
        if !writes.is_empty() {
            for o in b.keys.put_raw(writes).await.map_err(fail)? {
                match o {
                    crate::keys::RawOutcome::Differs => changed_meanwhile += 1,
                    _ => rewrapped += 1,
                }
            }
        }
    }
    let current = ring.current().version();
    eprintln!(
        "{seen} record(s) read, {rewrapped} re-sealed under master key v{current}, {changed_meanwhile} changed meanwhile"
    );
    if changed_meanwhile > 0 {
        eprintln!("run `cpixd keys rewrap` again to re-seal the records that changed meanwhile");
        return Ok(1);
    }
    // Prove it: every record now opens with the newest key alone.
    let only_current = crate::keys::Keyring::new(vec![ring.current().clone()]).map_err(fail)?;
    let mut after: Option<RecordId> = None;
    loop {
        let page = next_records(&*b.keys, &mut after, REWRAP_BATCH)
            .await
            .map_err(fail)?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            crate::keys::verify_raw(&only_current, r).map_err(fail)?;
        }
    }
    eprintln!("every record opens with master key v{current} alone: older versions can leave the key file");
    Ok(0)
}
