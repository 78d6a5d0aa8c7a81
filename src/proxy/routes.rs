//! The gateway's catalogue: each platform's documented operations, compiled
//! in from the route tables in `src/proxy/routes/*.tsv`, and the matcher
//! that maps a request (method, raw path) to one route — fixed segments win
//! over parameters — or ranks the closest operations when none matches.

use axum::http::Method;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The platforms of the gateway: URL name and route table.
const TABLES: [(&str, &str); 5] = [
    ("cloudvideokit", include_str!("routes/cloudvideokit.tsv")),
    ("kinescope", include_str!("routes/kinescope.tsv")),
    ("apivideo", include_str!("routes/apivideo.tsv")),
    ("pixop", include_str!("routes/pixop.tsv")),
    ("5centscdn", include_str!("routes/5centscdn.tsv")),
];

/// Host key of the operations cpixd serves itself (the Cloud Video Kit DRM group).
pub const NATIVE_HOST: &str = "native";

/// Whether an operation may be replayed automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Retry {
    /// Never replayed: creates, starts work, uploads, rotates secrets.
    No,
    /// A delete: a replay is harmless but may answer 404.
    Delete,
    /// Safe to replay on connection errors, 5xx and 429.
    Yes,
}

impl Retry {
    /// The table spelling (`yes`, `no`, `del`).
    pub fn as_str(self) -> &'static str {
        match self {
            Retry::Yes => "yes",
            Retry::No => "no",
            Retry::Delete => "del",
        }
    }

    /// True when the gateway may replay it.
    pub fn replayable(self) -> bool {
        self != Retry::No
    }
}

/// One documented upstream operation (a row of a route table).
#[derive(Debug, Clone)]
pub struct Operation {
    /// Section of the platform's reference.
    pub group: String,
    /// Operation name, unique within the platform.
    pub name: String,
    /// HTTP method sent upstream.
    pub method: Method,
    /// Key of the upstream base URL (`api`, `upload`, `redirector`, `native`).
    pub host: String,
    /// Path template (`/v1/videos/{video_id}`), or `None` where the
    /// reference gives no path.
    pub path: Option<Template>,
    /// Request body kind (`none`, `json`, `multipart`, …).
    pub body: String,
    /// Replay class.
    pub retry: Retry,
    /// The operation mints, reveals, changes or revokes account credentials
    /// or secrets; the gateway refuses it unless the platform allows it.
    pub credential: bool,
}

impl Operation {
    /// The path template as written, `-` when unknown.
    pub fn path_text(&self) -> &str {
        self.path.as_ref().map_or("-", |t| t.text.as_str())
    }

    /// True for the operations cpixd serves itself.
    pub fn is_native(&self) -> bool {
        self.host == NATIVE_HOST
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Param(String),
    /// `(.json|.csv|.txt)`: one of the alternatives.
    Alt(Vec<String>),
}

/// A parsed path template: `/` separated segments, each a sequence of
/// literals, `{parameters}` and `(a|b)` alternations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Vec<Piece>>,
}

/// Name under which an alternation takes its value in [`Template::fill`].
pub const ALTERNATION_PARAM: &str = "suffix";

impl Template {
    /// Parses `/a/{b}/c{d}.{e}` or `/x/chat(.json|.csv)`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("path {text:?} does not start with /"))?;
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            let mut pieces = Vec::new();
            let mut s = seg;
            while !s.is_empty() {
                let (piece, used) = if let Some(r) = s.strip_prefix('{') {
                    let end = r
                        .find('}')
                        .ok_or_else(|| format!("unclosed {{ in {text:?}"))?;
                    let name = &r[..end];
                    if name.is_empty() || name.contains(['{', '(', '/']) {
                        return Err(format!("bad parameter name in {text:?}"));
                    }
                    (Piece::Param(name.to_owned()), end + 2)
                } else if let Some(r) = s.strip_prefix('(') {
                    let end = r
                        .find(')')
                        .ok_or_else(|| format!("unclosed ( in {text:?}"))?;
                    let alts: Vec<String> = r[..end].split('|').map(str::to_owned).collect();
                    if alts.iter().any(String::is_empty) {
                        return Err(format!("empty alternative in {text:?}"));
                    }
                    (Piece::Alt(alts), end + 2)
                } else {
                    let end = s.find(['{', '(']).unwrap_or(s.len());
                    (Piece::Lit(s[..end].to_owned()), end)
                };
                if let (Some(Piece::Param(_)), Piece::Param(_)) = (pieces.last(), &piece) {
                    return Err(format!("two parameters side by side in {text:?}"));
                }
                pieces.push(piece);
                s = &s[used..];
            }
            if pieces.is_empty() {
                return Err(format!("empty segment in {text:?}"));
            }
            segments.push(pieces);
        }
        Ok(Template {
            text: text.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Specificity of each segment: 2 fixed, 1 mixed, 0 a bare parameter.
    fn rank(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|p| match p.as_slice() {
                [Piece::Param(_)] => 0,
                p if p.iter().all(|x| matches!(x, Piece::Lit(_))) => 2,
                _ => 1,
            })
            .collect()
    }

    /// True when the raw path (`/v1/videos/abc`) fits the template.
    pub fn matches(&self, path: &str) -> bool {
        self.matches_as(path, false)
    }

    /// [`Template::matches`], ignoring ASCII case when `fold`.
    fn matches_as(&self, path: &str, fold: bool) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut n = 0;
        for (seg, pieces) in rest
            .split('/')
            .zip(self.segments.iter().chain(std::iter::repeat(&Vec::new())))
        {
            if pieces.is_empty() || !match_pieces(pieces, seg, fold) {
                return false;
            }
            n += 1;
        }
        n == self.segments.len()
    }

    /// The path with each `{name}` replaced by `params[name]` (an
    /// alternation takes `params["suffix"]`, else its first choice).
    pub fn fill(&self, params: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for pieces in &self.segments {
            out.push('/');
            for p in pieces {
                match p {
                    Piece::Lit(l) => out.push_str(l),
                    Piece::Param(name) => match params.get(name) {
                        Some(v) if !v.is_empty() => out.push_str(&percent_encode(v, SEGMENT_EXTRA)),
                        _ => return Err(format!("missing path parameter {name:?}")),
                    },
                    Piece::Alt(alts) => match params.get(ALTERNATION_PARAM) {
                        Some(v) if alts.contains(v) => out.push_str(v),
                        Some(v) => {
                            return Err(format!("{ALTERNATION_PARAM} {v:?} is not one of {alts:?}"))
                        }
                        None => out.push_str(&alts[0]),
                    },
                }
            }
        }
        Ok(out)
    }

    /// Names of the `{parameters}`, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().flatten().filter_map(|p| match p {
            Piece::Param(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// How far `path` is from this template: literal segments by edit
    /// distance, parameters free, extra or missing segments by length.
    fn distance(&self, path: &str) -> usize {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut d = 0;
        for i in 0..segs.len().max(self.segments.len()) {
            match (self.segments.get(i), segs.get(i)) {
                (Some(p), Some(s)) => {
                    if !match_pieces(p, s, false) {
                        let lit: String = p
                            .iter()
                            .map(|x| match x {
                                Piece::Lit(l) => l.as_str(),
                                _ => "",
                            })
                            .collect();
                        // Bounded, so a huge segment costs no more than a
                        // normal one.
                        let s: &str = s;
                        let head = s.char_indices().nth(64).map_or(s, |(i, _)| &s[..i]);
                        d += edit_distance(&lit, head).max(1);
                    }
                }
                (Some(p), None) => d += p.len().max(1) * 4,
                (None, Some(s)) => d += s.len().max(4),
                (None, None) => {}
            }
        }
        d
    }
}

/// Characters a path segment may hold besides unreserved ones (RFC 3986
/// sub-delims, `:` and `@`, and `%` so that encoded values stay as given).
const SEGMENT_EXTRA: &[u8] = b"!$&'()*+,;=:@%";

/// Percent-encodes `v`, keeping unreserved characters and `keep`.
pub fn percent_encode(v: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes into bytes; a `%` not followed by two hex digits
/// stays as written.
fn percent_decode_bytes(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let escaped = (s[i] == b'%')
            .then(|| Some(hex(*s.get(i + 1)?)? << 4 | hex(*s.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

/// Decodes `%XX` escapes (text that is not UTF-8 is replaced).
pub fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s.as_bytes())).into_owned()
}

/// The path without empty segments (doubled or trailing slashes) and with
/// its escapes decoded.
fn loose_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(&percent_decode(seg));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Why a raw path must not be sent upstream with cpixd's credentials, if
/// it must not: a segment that is `.` or `..` (also percent-encoded, also
/// with a `;parameter`), or that holds a slash, a backslash or a control
/// character once decoded. Up to three rounds of decoding are looked
/// through, so double-encoded spellings (`%252e%252e`) are caught too.
pub fn unsafe_path(path: &str) -> Option<&'static str> {
    for segment in path.split('/') {
        let mut cur = segment.as_bytes().to_vec();
        for _ in 0..4 {
            if cur.contains(&b'\\') {
                return Some("a backslash in a path segment");
            }
            if cur.iter().any(|&b| b < 0x20 || b == 0x7f) {
                return Some("a control character in a path segment");
            }
            let name = cur.split(|&b| b == b';').next().unwrap_or_default();
            if name == b"." || name == b".." {
                return Some("a dot segment (. or ..)");
            }
            let next = percent_decode_bytes(&cur);
            if next.contains(&b'/') {
                return Some("an encoded slash in a path segment");
            }
            if next == cur {
                break;
            }
            cur = next;
        }
    }
    None
}

/// `s` without the prefix `p`, compared exactly or ignoring ASCII case.
fn strip<'s>(s: &'s str, p: &str, fold: bool) -> Option<&'s str> {
    if fold {
        let head = s.get(..p.len())?;
        head.eq_ignore_ascii_case(p).then(|| &s[p.len()..])
    } else {
        s.strip_prefix(p)
    }
}

fn match_pieces(pieces: &[Piece], s: &str, fold: bool) -> bool {
    match pieces.split_first() {
        None => s.is_empty(),
        Some((Piece::Lit(l), rest)) => {
            strip(s, l, fold).is_some_and(|r| match_pieces(rest, r, fold))
        }
        Some((Piece::Alt(alts), rest)) => alts
            .iter()
            .any(|a| strip(s, a, fold).is_some_and(|r| match_pieces(rest, r, fold))),
        // Longest first, so `{asset}.{format}` splits on the last dot.
        Some((Piece::Param(_), rest)) => (1..=s.len())
            .rev()
            .any(|end| s.is_char_boundary(end) && match_pieces(rest, &s[end..], fold)),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A routable (method, host, path): one or more operations that share it
/// (e.g. an update and a `_METHOD=DELETE` delete on the same POST path).
#[derive(Debug, Clone)]
pub struct Route {
    /// Indices into [`Catalogue::operations`].
    pub operations: Vec<usize>,
    /// The most cautious replay class of those operations.
    pub retry: Retry,
    /// True when any of those operations is a credential operation.
    pub credential: bool,
    rank: Vec<u8>,
}

/// One platform's operations and routes.
#[derive(Debug)]
pub struct Catalogue {
    /// The platform's URL name.
    pub platform: &'static str,
    /// Every documented operation, in table order.
    pub operations: Vec<Operation>,
    routes: Vec<Route>,
}

/// What a request resolved to.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The route.
    pub route: &'a Route,
    /// Its first operation.
    pub operation: &'a Operation,
}

impl Catalogue {
    /// Parses a route table (comment lines start with `#`; a header line;
    /// tab-separated `group operation method host path body retry
    /// credential`).
    pub fn parse(platform: &'static str, tsv: &str) -> Result<Catalogue, String> {
        let mut operations: Vec<Operation> = Vec::new();
        let mut header_seen = false;
        for (n, line) in tsv.lines().enumerate() {
            let at = |m: String| format!("{platform} routes line {}: {m}", n + 1);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if !header_seen {
                if cols
                    != [
                        "group",
                        "operation",
                        "method",
                        "host",
                        "path",
                        "body",
                        "retry",
                        "credential",
                    ]
                {
                    return Err(at("expected the header line".into()));
                }
                header_seen = true;
                continue;
            }
            let [group, name, method, host, path, body, retry, credential] = cols[..] else {
                return Err(at(format!("{} columns, expected 8", cols.len())));
            };
            let credential = match credential {
                "yes" => true,
                "no" => false,
                other => return Err(at(format!("credential {other:?} is not yes or no"))),
            };
            let method = Method::from_bytes(method.as_bytes()).map_err(|e| at(e.to_string()))?;
            let retry = match retry {
                "yes" => Retry::Yes,
                "no" => Retry::No,
                "del" => Retry::Delete,
                other => return Err(at(format!("retry {other:?} is not yes, no or del"))),
            };
            let path = match path {
                "-" => None,
                p => Some(Template::parse(p).map_err(at)?),
            };
            if operations.iter().any(|o| o.name == name) {
                return Err(at(format!("operation {name:?} is listed twice")));
            }
            operations.push(Operation {
                group: group.to_owned(),
                name: name.to_owned(),
                method,
                host: host.to_owned(),
                path,
                body: body.to_owned(),
                retry,
                credential,
            });
        }
        let mut routes: Vec<Route> = Vec::new();
        let mut keys: Vec<(Method, String, String)> = Vec::new();
        for (i, op) in operations.iter().enumerate() {
            let Some(t) = &op.path else { continue };
            let key = (op.method.clone(), op.host.clone(), t.text.clone());
            match keys.iter().position(|k| *k == key) {
                Some(r) => {
                    routes[r].operations.push(i);
                    routes[r].retry = routes[r].retry.min(op.retry);
                    routes[r].credential |= op.credential;
                }
                None => {
                    keys.push(key);
                    routes.push(Route {
                        operations: vec![i],
                        retry: op.retry,
                        credential: op.credential,
                        rank: t.rank(),
                    });
                }
            }
        }
        Ok(Catalogue {
            platform,
            operations,
            routes,
        })
    }

    /// The operation called `name` (exact, else ignoring case when that is
    /// unambiguous).
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.name == name).or_else(|| {
            let mut it = self
                .operations
                .iter()
                .filter(|o| o.name.eq_ignore_ascii_case(name));
            match (it.next(), it.next()) {
                (Some(o), None) => Some(o),
                _ => None,
            }
        })
    }

    fn template(&self, r: &Route) -> &Template {
        // Every route is built from an operation with a path.
        self.operations[r.operations[0]]
            .path
            .as_ref()
            .expect("routes have paths")
    }

    /// The route of `method` + raw `path`, the most specific one when
    /// several fit (fixed segments before parameters, left to right). HEAD
    /// falls back to GET where no HEAD is documented.
    pub fn resolve(&self, method: &Method, path: &str) -> Option<Resolved<'_>> {
        self.resolve_as(method, path, false)
    }

    /// [`Catalogue::resolve`] for the path as a lenient upstream may read
    /// it: ASCII case ignored, empty segments dropped, escapes of plain
    /// characters decoded.
    pub fn resolve_loosely(&self, method: &Method, path: &str) -> Option<Resolved<'_>> {
        self.resolve_as(method, &loose_path(path), true)
    }

    fn resolve_as(&self, method: &Method, path: &str, fold: bool) -> Option<Resolved<'_>> {
        let find = |m: &Method| {
            self.routes
                .iter()
                .filter(|r| self.operations[r.operations[0]].method == *m)
                .filter(|r| self.template(r).matches_as(path, fold))
                .max_by(|a, b| a.rank.cmp(&b.rank))
        };
        let route = find(method).or_else(|| {
            if method == Method::HEAD {
                find(&Method::GET)
            } else {
                None
            }
        })?;
        Some(Resolved {
            route,
            operation: &self.operations[route.operations[0]],
        })
    }

    /// Names of a route's operations joined for headers and metrics.
    pub fn label(&self, route: &Route) -> String {
        route
            .operations
            .iter()
            .map(|&i| self.operations[i].name.as_str())
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Up to `n` operations nearest to `method` + `path`, nearest first.
    pub fn closest(&self, method: &Method, path: &str, n: usize) -> Vec<&Operation> {
        let mut scored: Vec<(usize, usize, &Operation)> = self
            .operations
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let d = o.path.as_ref()?.distance(path) * 2 + usize::from(o.method != *method);
                Some((d, i, o))
            })
            .collect();
        scored.sort_by_key(|(d, i, _)| (*d, *i));
        scored.into_iter().take(n).map(|(_, _, o)| o).collect()
    }
}

static CATALOGUES: LazyLock<Vec<Catalogue>> = LazyLock::new(|| {
    TABLES
        .iter()
        .map(|(name, tsv)| match Catalogue::parse(name, tsv) {
            Ok(c) => c,
            // The tables are compiled in and checked by the unit tests.
            Err(e) => panic!("built-in route table: {e}"),
        })
        .collect()
});

/// Every platform's catalogue, in a fixed order.
pub fn catalogues() -> &'static [Catalogue] {
    &CATALOGUES
}

/// The catalogue of `platform` (its URL name).
pub fn catalogue(platform: &str) -> Option<&'static Catalogue> {
    catalogues().iter().find(|c| c.platform == platform)
}

/// The URL names of every platform.
pub fn platform_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(c: &Catalogue, m: Method, p: &str) -> Option<String> {
        c.resolve(&m, p).map(|r| c.label(r.route))
    }

    #[test]
    fn every_table_parses_with_the_documented_counts() {
        let counts: BTreeMap<&str, (usize, usize, usize)> = catalogues()
            .iter()
            .map(|c| {
                (
                    c.platform,
                    (
                        c.operations.len(),
                        c.operations.iter().filter(|o| o.is_native()).count(),
                        c.operations.iter().filter(|o| o.path.is_none()).count(),
                    ),
                )
            })
            .collect();
        assert_eq!(counts["cloudvideokit"], (130, 12, 0));
        assert_eq!(counts["kinescope"], (128, 0, 0));
        assert_eq!(counts["apivideo"], (40, 0, 0));
        assert_eq!(counts["pixop"], (24, 0, 0));
        assert_eq!(counts["5centscdn"], (174, 0, 27));
    }

    #[test]
    fn fixed_segments_win_over_parameters() {
        let cvk = catalogue("cloudvideokit").unwrap();
        assert_eq!(
            op(cvk, Method::GET, "/live/v1/channels/limit").as_deref(),
            Some("get_channel_limit")
        );
        assert_eq!(
            op(cvk, Method::GET, "/live/v1/channels/c-42").as_deref(),
            Some("get_channel_details")
        );
        assert_eq!(
            op(cvk, Method::POST, "/vod/v1/assets/outputs/progress").as_deref(),
            Some("get_multiple_vod_output_progress")
        );
        assert_eq!(
            op(cvk, Method::POST, "/vod/v1/assets/a1/outputs").as_deref(),
            Some("add_output_to_VOD")
        );
        assert_eq!(
            op(
                cvk,
                Method::GET,
                "/notifications/v1/webhook/signature-secret"
            )
            .as_deref(),
            Some("get_webhook_signature_secret")
        );
    }

    #[test]
    fn glued_suffixes_and_alternations() {
        let cvk = catalogue("cloudvideokit").unwrap();
        let r = cvk
            .resolve(&Method::GET, "/redirector/v1/redir/t1/my.asset/o1.m3u8")
            .unwrap();
        assert_eq!(r.operation.host, "redirector");
        assert!(r.operation.path_text().ends_with("{outputId}.{format}"));
        assert!(cvk
            .resolve(&Method::GET, "/redirector/v1/redir/t1/a1/o1")
            .is_none());
        let k = catalogue("kinescope").unwrap();
        for suffix in ["json", "csv", "txt"] {
            let p = format!("/v2/live/events/e1/stream/s1/chat.{suffix}");
            assert!(k.resolve(&Method::GET, &p).is_some(), "{p}");
        }
        assert!(k
            .resolve(&Method::GET, "/v2/live/events/e1/stream/s1/chat.xml")
            .is_none());
        let t = Template::parse("/x/{a}.{b}/chat(.json|.csv)").unwrap();
        let params: BTreeMap<String, String> =
            [("a".into(), "v 1".into()), ("b".into(), "mp4".into())].into();
        assert_eq!(t.fill(&params).unwrap(), "/x/v%201.mp4/chat.json");
        assert!(t.matches("/x/v%201.mp4/chat.json"));
        assert!(Template::parse("/x/{a}{b}").is_err());
        assert!(Template::parse("x/{a}").is_err());
        assert!(Template::parse("/x//y").is_err());
    }

    #[test]
    fn shared_routes_merge_and_keep_the_cautious_retry_class() {
        let f = catalogue("5centscdn").unwrap();
        let r = f.resolve(&Method::POST, "/streams/push/123").unwrap();
        assert_eq!(r.route.operations.len(), 2);
        assert_eq!(r.route.retry, Retry::No);
        let p = catalogue("pixop").unwrap();
        let head = p
            .resolve(&Method::HEAD, "/media/v1/download/original/v1")
            .unwrap();
        assert_eq!(head.operation.name, "download_original_media_head");
        let k = catalogue("kinescope").unwrap();
        assert_eq!(
            op(k, Method::HEAD, "/v1/videos/abc").as_deref(),
            Some("get_video")
        );
    }

    #[test]
    fn unknown_requests_get_the_nearest_operations() {
        let k = catalogue("kinescope").unwrap();
        assert!(k.resolve(&Method::GET, "/v1/vidoes").is_none());
        let near = k.closest(&Method::GET, "/v1/vidoes", 3);
        assert_eq!(near[0].path_text(), "/v1/videos");
        assert_eq!(near[0].method, Method::GET);
        assert!(k.resolve(&Method::GET, "/v1/videos/").is_none());
        assert!(k.operation("GET_VIDEO").is_some());
    }
}
