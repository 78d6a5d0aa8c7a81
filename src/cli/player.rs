//! Command-line tools of the player side, for scripts: `cpixd token issue`
//! (a DRM token without the HTTP API). It reads the store: on the embedded
//! one, stop the server on that data directory first.

use super::{open_backends, runtime, StoreArgs, EXIT_REJECTED};
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
    let opened = runtime().block_on(async {
        let (config, b, _) = open_backends(&a.store, false).await?;
        let tenant_known = config.tenants.iter().any(|t| t.id == a.tenant);
        let keys = if tenant_known {
            Some(
                b.keys
                    .signing_keys(&a.tenant)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok::<_, String>((config, keys))
    });
    let (config, keys) = match opened {
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
    let Some(key) = keys.as_ref().and_then(|k| k.first()) else {
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
