//! Access that is not a tenant credential: client-address ranges
//! (`[tenant.anevia] allow_from`), who may read `/metrics` (`[metrics]`),
//! and the file-permission rules that keep secrets readable by their owner
//! only (configuration files with inline secrets, data directories).

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// An address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a
/// bare address is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(prefix))) >> (128 - u32::from(width))
    }
}

impl IpRange {
    /// Parses `ADDR/PREFIX` or `ADDR`.
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an address or CIDR range"))?;
        let net = canonical(net);
        let width = bits(net).1;
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
        };
        let (value, _) = bits(net);
        if value & !mask(prefix, width) & (u128::MAX >> (128 - u32::from(width))) != 0 {
            return Err(format!(
                "{text:?}: host bits are set (the range starts at a lower address)"
            ));
        }
        Ok(IpRange { net, prefix })
    }

    /// True when `ip` lies in the range.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = canonical(*ip);
        let ((a, wa), (b, wb)) = (bits(ip), bits(self.net));
        wa == wb && (a & mask(self.prefix, wa)) == (b & mask(self.prefix, wb))
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the last address of `X-Forwarded-For` that is not a trusted proxy
/// itself.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpRange],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or_default().rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// `[tenant.anevia]`: the Ateme/Anevia GET for origins that cannot send
/// credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct AneviaConfig {
    /// Client address ranges allowed without credentials (empty: none).
    pub allow_from: Vec<String>,
}

/// `[metrics]`: who may read `/metrics`, which names every tenant and its
/// traffic.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Hex SHA-256 of a bearer token that may read `/metrics` on the main
    /// listener (`cpixd hash-secret`).
    pub token_sha256: Option<String>,
    /// A separate address that serves `/metrics` alone, without a token.
    pub listen: Option<String>,
    /// Serve `/metrics` on the main listener to anyone.
    pub public: bool,
}

/// The validated `[metrics]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsAccess {
    /// SHA-256 of the bearer token accepted on the main listener.
    pub token_hash: Option<[u8; 32]>,
    /// The separate metrics listener.
    pub listen: Option<SocketAddr>,
    /// Open to anyone on the main listener.
    pub public: bool,
}

/// Key names whose string values are secrets when written inline.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_file") || key.ends_with("_sha256") {
        return false;
    }
    matches!(key.as_str(), "api_key" | "token" | "password" | "secret")
        || ["_secret", "_password", "_token", "_api_key"]
            .iter()
            .any(|s| key.ends_with(s))
}

/// Key paths of the secrets written inline in a configuration file.
pub fn inline_secrets(table: &toml::Table) -> Vec<String> {
    fn walk(v: &toml::Value, path: &str, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let url_with_password = p == "store.url"
                        && matches!(v, toml::Value::String(s) if super::store::redact(s) != *s);
                    if url_with_password
                        || is_secret_key(k) && matches!(v, toml::Value::String(s) if !s.is_empty())
                    {
                        out.push(p);
                    } else {
                        walk(v, &p, out);
                    }
                }
            }
            toml::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&toml::Value::Table(table.clone()), "", &mut out);
    out
}

/// The permission bits of `path` (0 where there are none).
#[cfg(unix)]
fn mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode(_: &Path) -> std::io::Result<u32> {
    Ok(0)
}

/// Refuses a configuration file that holds secrets inline and that group
/// or others may read.
pub fn check_config_file(path: &Path, text: &str) -> Result<(), String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(()); // reported by the parser with its position
    };
    let secrets = inline_secrets(&table);
    if secrets.is_empty() {
        return Ok(());
    }
    let m = mode(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if m & 0o077 != 0 {
        return Err(format!(
            "{} holds secrets inline ({}) and is readable by group or others (mode {m:o}): \
             run chmod 600 on it, or move the secrets to *_file settings or CPIXD_* variables",
            path.display(),
            secrets.join(", ")
        ));
    }
    Ok(())
}

/// A warning for a data directory that group or others may write to (they
/// could replace the key store or the master key).
pub fn data_dir_warning(dir: &Path) -> Option<String> {
    let m = mode(dir).ok()?;
    (m & 0o022 != 0).then(|| {
        format!(
            "data directory {} is writable by group or others (mode {m:o}); run chmod 700 on it",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains(&ip("10.200.1.2")));
        assert!(r.contains(&ip("::ffff:10.1.1.1")));
        assert!(!r.contains(&ip("11.0.0.1")));
        assert!(!r.contains(&ip("::1")));
        let one = IpRange::parse("192.0.2.10").unwrap();
        assert!(one.contains(&ip("192.0.2.10")) && !one.contains(&ip("192.0.2.11")));
        let v6 = IpRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(&ip("2001:db8:1::5")) && !v6.contains(&ip("2001:db9::1")));
        assert!(IpRange::parse("0.0.0.0/0")
            .unwrap()
            .contains(&ip("8.8.8.8")));
        assert!(IpRange::parse("::/0").unwrap().contains(&ip("::1")));
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "nope", "10.0.0.0/x", "::1/129"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(r.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn client_addresses_behind_trusted_proxies() {
        let trusted = [IpRange::parse("10.0.0.0/8").unwrap()];
        let xff = Some("203.0.113.9, 198.51.100.1, 10.1.1.1");
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), xff, &trusted),
            Some(ip("198.51.100.1"))
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_address(Some(ip("192.0.2.1")), xff, &trusted),
            Some(ip("192.0.2.1"))
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), Some("junk, 10.2.2.2"), &trusted),
            Some(ip("10.2.2.2"))
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), None, &trusted),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(client_address(None, xff, &trusted), None);
    }

    #[test]
    fn inline_secrets_are_found_by_key_name() {
        let t: toml::Table = r#"
            [platforms.kinescope]
            token = "abc"
            [platforms.pixop]
            password_file = "/x"
            email = "a@b"
            [[tenant]]
            api_key_sha256 = ["00"]
            [metrics]
            token_sha256 = "00"
        "#
        .parse()
        .unwrap();
        assert_eq!(inline_secrets(&t), vec!["platforms.kinescope.token"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_config_with_inline_secrets_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let with = "[platforms.kinescope]\ntoken = \"abc\"\n";
        std::fs::write(&p, with).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_config_file(&p, with).unwrap_err();
        // A database URL with a password is a secret too; without one it is not.
        let url = "[store]\nbackend = \"postgres\"\nurl = \"postgres://cpixd:pw@db/cpixd\"\n";
        assert!(check_config_file(&p, url)
            .unwrap_err()
            .contains("store.url"));
        let no_password = "[store]\nbackend = \"postgres\"\nurl = \"postgres://cpixd@db/cpixd\"\n";
        assert!(check_config_file(&p, no_password).is_ok());
        assert!(
            e.contains("platforms.kinescope.token") && e.contains("644"),
            "{e}"
        );
        assert!(check_config_file(&p, "listen = \"127.0.0.1:1\"\n").is_ok());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_config_file(&p, with).is_ok());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(data_dir_warning(dir.path()).is_some());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(data_dir_warning(dir.path()).is_none());
    }
}
