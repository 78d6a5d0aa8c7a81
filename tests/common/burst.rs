//! A burst of SPEKE 2.0 requests with fresh keys, for the crash and
//! multi-node tests: request `n` asks two new KIDs for content `burst-n`,
//! and [`ask`] returns the keys of a 200 answer.

use super::http::try_send;
use super::server::ACME_KEY;
use std::collections::BTreeSet;
use std::time::Duration;

/// KID `k` of request `n`.
pub fn kid(n: u64, k: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", n, k)
}

/// A SPEKE 2.0 request with two fresh keys for channel `n`.
pub fn request(n: u64) -> String {
    format!(
        r#"<cpix:CPIX contentId="burst-{n}" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
<cpix:ContentKeyList><cpix:ContentKey kid="{a}" commonEncryptionScheme="cenc"/><cpix:ContentKey kid="{b}" commonEncryptionScheme="cenc"/></cpix:ContentKeyList>
<cpix:DRMSystemList><cpix:DRMSystem kid="{a}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem><cpix:DRMSystem kid="{b}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem></cpix:DRMSystemList>
<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="{a}" intendedTrackType="VIDEO"><cpix:VideoFilter/></cpix:ContentKeyUsageRule><cpix:ContentKeyUsageRule kid="{b}" intendedTrackType="AUDIO"><cpix:AudioFilter/></cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#,
        a = kid(n, 1),
        b = kid(n, 2)
    )
}

/// (KID, key) pairs of one response.
pub type Keys = Vec<(String, Vec<u8>)>;

/// POSTs `body` to `{base}/kms/v1/speke2` as tenant acme (SPEKE 2.0);
/// `None` when no answer came within 10 s.
pub async fn post_speke2(base: &str, body: &str) -> Option<super::http::Resp> {
    tokio::time::timeout(
        Duration::from_secs(10),
        try_send(
            "POST",
            &format!("{base}/kms/v1/speke2"),
            &[
                ("x-api-key", ACME_KEY),
                ("x-tenant-id", "acme"),
                ("content-type", "application/xml"),
                ("x-speke-version", "2.0"),
            ],
            body.as_bytes().to_vec(),
        ),
    )
    .await
    .ok()?
    .ok()
}

/// The keys of a 200 answer to [`post_speke2`], `None` for anything else.
pub async fn ask(base: &str, body: &str) -> Option<Keys> {
    let r = post_speke2(base, body).await?;
    if r.status != 200 {
        return None;
    }
    let doc = cpixd::cpix::parse(&r.body).ok()?;
    Some(
        doc.keys()
            .iter()
            .map(|k| (k.kid.to_string(), k.plain_value().unwrap().to_vec()))
            .collect(),
    )
}

/// KIDs of tenant acme, read with `cpixd keys list ARGS` and `env`.
pub fn stored_kids(args: &[&std::ffi::OsStr], env: &[(&str, String)]) -> BTreeSet<String> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"));
    cmd.args(["keys", "list", "--tenant", "acme"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}
