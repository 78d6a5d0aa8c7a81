//! Request bodies of about 1 MB for the hostile-input tests and benches:
//! a valid SPEKE 2.0 request, and XML that attacks namespace resolution
//! and attribute handling.

/// Size of every body, in bytes.
pub const SIZE: usize = 1_000_000;

/// A valid SPEKE 2.0 request of about `SIZE` bytes: one key, and many
/// Widevine DRMSystems' worth of keys and rules.
pub fn benign() -> String {
    let mut keys = String::new();
    let mut systems = String::new();
    let mut rules = String::new();
    let mut i = 0u32;
    while keys.len() + systems.len() + rules.len() < SIZE - 400 {
        let kid = format!("{i:08x}-1111-4222-8333-444455556666");
        keys.push_str(&format!(
            r#"<cpix:ContentKey kid="{kid}" commonEncryptionScheme="cenc"/>"#
        ));
        systems.push_str(&format!(
            r#"<cpix:DRMSystem kid="{kid}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem>"#
        ));
        rules.push_str(&format!(
            r#"<cpix:ContentKeyUsageRule kid="{kid}" intendedTrackType="T{i}"><cpix:VideoFilter maxPixels="589824"/></cpix:ContentKeyUsageRule>"#
        ));
        i += 1;
    }
    format!(
        r#"<cpix:CPIX contentId="c" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><cpix:ContentKeyList>{keys}</cpix:ContentKeyList><cpix:DRMSystemList>{systems}</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>{rules}</cpix:ContentKeyUsageRuleList></cpix:CPIX>"#
    )
}

/// Pads `head` with `unit` up to `SIZE` bytes, then closes with `tail`.
fn fill(head: String, unit: &str, tail: &str) -> String {
    let mut s = head;
    while s.len() + unit.len() + tail.len() < SIZE {
        s.push_str(unit);
    }
    s.push_str(tail);
    s
}

/// The bodies of the report and their relatives.
pub fn hostile() -> Vec<(&'static str, String)> {
    let decls = |n: usize| -> String {
        (0..n)
            .map(|i| format!(r#" xmlns:p{i}="urn:x:{i}""#))
            .collect()
    };
    vec![
        (
            // The reported body: ~45 000 declarations on the root, then
            // prefixed elements resolved against all of them.
            "45 000 declarations and 50 000 prefixed elements",
            {
                let mut s = format!(
                    r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"{}>"#,
                    decls(45_000)
                );
                s.truncate(SIZE / 2);
                s.push('>');
                fill(s, "<p0:x/>", "</cpix:CPIX>")
            },
        ),
        (
            "a full scope on the root, every element resolved against it",
            fill(
                format!(
                    r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"{}>"#,
                    decls(30)
                ),
                "<p0:x/>",
                "</cpix:CPIX>",
            ),
        ),
        ("declarations piled up by nesting", {
            let mut s = String::from(r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix">"#);
            // Fifteen levels of two declarations: a full scope.
            for d in 0..15 {
                s.push_str(&format!(
                    r#"<a{d} xmlns:q{d}a="urn:x:1" xmlns:q{d}b="urn:x:2">"#
                ));
            }
            let tail: String = (0..15).rev().map(|d| format!("</a{d}>")).collect();
            fill(s, "<q0a:x/>", &(tail + "</cpix:CPIX>"))
        }),
        (
            "thirty declarations on every element",
            fill(
                String::from(r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix">"#),
                &format!("<p0:x{}/>", decls(30)),
                "</cpix:CPIX>",
            ),
        ),
        (
            "thirty prefixed attributes on every element",
            fill(
                format!(
                    r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"{}>"#,
                    decls(30)
                ),
                &format!(
                    "<x {}/>",
                    (0..30)
                        .map(|i| format!(r#"p{i}:a="1""#))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                "</cpix:CPIX>",
            ),
        ),
        (
            // Skipped markup is skipped in a loop: no stack growth, no
            // re-scan.
            "nothing but comments and processing instructions",
            fill(
                String::from(r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix">"#),
                "<!----><?p?>",
                "</cpix:CPIX>",
            ),
        ),
        (
            "references in every text and attribute",
            fill(
                String::from(r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix">"#),
                "<x a='&lt;&#65;&#x42;&gt;'>&amp;&#x263A;</x>",
                "</cpix:CPIX>",
            ),
        ),
        ("a new namespace URI on every element", {
            let mut s = String::from(r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix">"#);
            let mut i = 0;
            while s.len() < SIZE - 64 {
                s.push_str(&format!(r#"<p:x xmlns:p="urn:n:{i}"/>"#));
                i += 1;
            }
            s + "</cpix:CPIX>"
        }),
    ]
}
