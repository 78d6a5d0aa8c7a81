//! `application/x-www-form-urlencoded` name/value pairs, as query strings
//! and OAuth form bodies carry them: `&`-separated, `+` for a space,
//! percent escapes decoded. Every handler that reads parameters reads them
//! through here, so a value means the same wherever it is sent.

use crate::proxy::routes::percent_decode;

/// The decoded pairs of `text` in order; empty pieces are skipped and a
/// piece without `=` has an empty value.
pub fn pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    if s.contains('+') {
        percent_decode(&s.replace('+', " "))
    } else {
        percent_decode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_escapes_and_bare_names() {
        let got: Vec<_> = pairs("a=1&&b=x+y%2Bz&c&DrmSystem%5B%5D=Widevine").collect();
        let want = [
            ("a", "1"),
            ("b", "x y+z"),
            ("c", ""),
            ("DrmSystem[]", "Widevine"),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }
}
