//! Command-line tools of the player side, for scripts: `cpixd token issue`
//! (a DRM token without the HTTP API) and `cpixd keys export --format
//! shaka` (the raw-key flags of Shaka Packager for one content id's keys,
//! for packagers without a CPIX client). Both read the store: stop the
//! server on that data directory first.

use super::{open_store, StoreArgs, EXIT_REJECTED};
use crate::drm::clearkey::common_pssh_box;
use crate::ids::KeyId;
use crate::keys::KeyStore;
use crate::licence::token::{self, Claims, Use};
use crate::licence::DrmSystem;
use clap::{Args, Subcommand};

/// `cpixd token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a DRM token (what GET /drm/v1/token/{assetId} returns).
    Issue(IssueArgs),
}

/// Arguments of `cpixd token issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Asset (content id) the token opens.
    #[arg(long)]
    pub asset: String,
    /// Viewer id to put in the token.
    #[arg(long)]
    pub user: Option<String>,
    /// DRM systems the token opens, comma-separated (default: all).
    #[arg(long)]
    pub drm: Option<String>,
    /// Lifetime in seconds (default: the tenant's token_lifetime_secs).
    #[arg(long)]
    pub lifetime: Option<u64>,
    /// Store location.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `cpixd token issue`.
pub fn issue(a: &IssueArgs) -> i32 {
    let systems: Result<Vec<DrmSystem>, String> = a
        .drm
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| DrmSystem::parse(s).ok_or(format!("--drm: unknown system {s:?}")))
        .collect();
    let systems = match systems {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_REJECTED;
        }
    };
    if let Err(e) = crate::ids::ContentId::new(&a.asset) {
        eprintln!("--asset: {e}");
        return EXIT_REJECTED;
    }
    let (config, store) = match open_store(&a.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let Some(tenant) = config.tenants.iter().find(|t| t.id == a.tenant) else {
        eprintln!("--tenant: no tenant {:?} in the configuration", a.tenant);
        return EXIT_REJECTED;
    };
    let auth = &tenant.authorization;
    let lifetime = a.lifetime.unwrap_or(auth.token_lifetime_secs);
    if lifetime == 0 || lifetime > auth.max_token_lifetime_secs {
        eprintln!("--lifetime: 1 to {} seconds", auth.max_token_lifetime_secs);
        return EXIT_REJECTED;
    }
    let keys = match store.signing_keys(&tenant.id) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let Some(key) = keys.first() else {
        eprintln!("the tenant has no signing key");
        return 1;
    };
    let now = token::now_secs();
    let claims = Claims {
        iss: "cpixd".into(),
        tid: tenant.id.clone(),
        sub: a.asset.clone(),
        uid: a.user.clone(),
        drm: systems.iter().map(|s| s.as_str().to_owned()).collect(),
        iat: now,
        exp: now.saturating_add(lifetime),
        typ: Use::Drm,
    };
    println!("{}", token::sign(&claims, key));
    0
}

/// Arguments of `cpixd keys export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Content id whose keys to export.
    #[arg(long)]
    pub content_id: String,
    /// Output format: `shaka` (Shaka Packager raw-key flags).
    #[arg(long, default_value = "shaka")]
    pub format: String,
    /// Store location.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    crate::drm::push_hex(bytes, &mut s);
    s
}

/// The Shaka Packager flags for `keys` (KID, key, scheme): raw-key
/// encryption, the protection scheme, one `--keys` entry per key (label
/// empty for a single key, so every stream uses it; the KID otherwise, for
/// the streams' `drm_label=`), the W3C common PSSH box of all KIDs, and
/// `--clear_lead 0` (Shaka Packager otherwise leaves the first 5 s clear).
pub fn shaka_flags(keys: &[(KeyId, [u8; 16])], scheme: Option<&str>) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|(kid, key)| {
            let label = if keys.len() == 1 {
                String::new()
            } else {
                kid.to_string()
            };
            format!(
                "label={label}:key_id={}:key={}",
                hex(kid.as_bytes()),
                hex(key)
            )
        })
        .collect();
    let kids: Vec<KeyId> = keys.iter().map(|(k, _)| *k).collect();
    let mut out = String::from("--enable_raw_key_encryption");
    if let Some(s) = scheme {
        out.push_str(" --protection_scheme ");
        out.push_str(s);
    }
    out.push_str(" --keys ");
    out.push_str(&entries.join(","));
    out.push_str(" --pssh ");
    out.push_str(&hex(&common_pssh_box(&kids).to_bytes()));
    out.push_str(" --clear_lead 0");
    out
}

/// Runs `cpixd keys export`.
pub fn export(a: &ExportArgs) -> i32 {
    if a.format != "shaka" {
        eprintln!("--format: {:?} is not a known format (shaka)", a.format);
        return EXIT_REJECTED;
    }
    let (_, store) = match open_store(&a.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let metas = match store.list(&a.tenant, Some(&a.content_id)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if metas.is_empty() {
        eprintln!(
            "no keys for content {:?} of tenant {:?}",
            a.content_id, a.tenant
        );
        return 1;
    }
    let mut schemes: Vec<&str> = metas.iter().filter_map(|m| m.scheme.as_deref()).collect();
    schemes.dedup();
    if schemes.len() > 1 {
        eprintln!(
            "the keys of {:?} use several schemes ({schemes:?}); Shaka Packager takes one",
            a.content_id
        );
        return EXIT_REJECTED;
    }
    let mut keys = Vec::with_capacity(metas.len());
    for m in &metas {
        match store.get(&a.tenant, m.kid) {
            Ok(Some(k)) => keys.push((m.kid, *k.key.expose())),
            Ok(None) => {}
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    }
    eprintln!(
        "{} key(s) of {:?} in the clear: keep this output private",
        keys.len(),
        a.content_id
    );
    println!("{}", shaka_flags(&keys, schemes.first().copied()));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_for_one_and_two_keys() {
        let k1 = KeyId::parse_uuid("0f083e4e-b831-4a3d-917e-ce78076e54aa").unwrap();
        let k2 = KeyId::parse_uuid("7e4d1c97-1a42-5710-80c5-b16272252e7f").unwrap();
        let one = shaka_flags(&[(k1, [0x11; 16])], Some("cenc"));
        assert_eq!(
            one,
            "--enable_raw_key_encryption --protection_scheme cenc --keys label=:key_id=0f083e4eb8314a3d917ece78076e54aa:key=11111111111111111111111111111111 --pssh 0000003470737368010000001077efecc0b24d02ace33c1e52e2fb4b000000010f083e4eb8314a3d917ece78076e54aa00000000 --clear_lead 0"
        );
        let two = shaka_flags(&[(k1, [1; 16]), (k2, [2; 16])], None);
        assert!(two.contains("label=0f083e4e-b831-4a3d-917e-ce78076e54aa:key_id="));
        assert!(two.contains(",label=7e4d1c97-1a42-5710-80c5-b16272252e7f:"));
        assert!(!two.contains("--protection_scheme"));
    }
}
