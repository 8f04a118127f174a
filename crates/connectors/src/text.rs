//! Provider text made fit to keep: stripped of markup, cut to a length.
//!
//! Whatever a provider (or something posing as one) sends may end up in a
//! connection's `last_error`, its account name or a status event, shown to
//! people and stored. So every provider-supplied string a connector puts in
//! an [`Error`](crate::Error) or an [`Account`](crate::Account) passes
//! through here and is cut to a bounded length, on a character boundary.

use serde::de::Error as _;

/// Longest provider message kept in an error, in characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 300;
/// Longest provider error code kept in an error, in characters.
pub(crate) const MAX_CODE_CHARS: usize = 100;
/// Longest account name kept, in characters (the store allows 200).
pub(crate) const MAX_NAME_CHARS: usize = 200;
/// Longest account id kept, in characters.
pub(crate) const MAX_ID_CHARS: usize = 500;
/// Longest URL from a provider (a redirect's `Location`) kept in an error,
/// in characters.
pub(crate) const MAX_URL_CHARS: usize = 300;
/// Longest quoted value kept in a JSON decoding error, in characters.
const MAX_QUOTED_CHARS: usize = 40;

/// `text` cut to `max` characters, with `…` in place of what was cut.
pub(crate) fn cap(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `message` without HTML tags, trimmed and cut to
/// [`MAX_MESSAGE_CHARS`]: WordPress puts markup such as
/// `<strong>Error:</strong>` in messages.
pub(crate) fn plain_text(message: &str) -> String {
    cap(strip_tags(message).trim(), MAX_MESSAGE_CHARS)
}

/// A provider's error code, as plain text cut to [`MAX_CODE_CHARS`].
pub(crate) fn code(code: &str) -> String {
    cap(strip_tags(code).trim(), MAX_CODE_CHARS)
}

fn strip_tags(message: &str) -> String {
    let mut text = String::with_capacity(message.len());
    let mut in_tag = false;
    for c in message.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// A JSON decoding error as it may be shown: serde quotes the values it
/// did not expect (`invalid type: string "…", expected u64`), which are
/// the provider's data, so string values are left out and other quoted
/// parts (field and variant names) cut to [`MAX_QUOTED_CHARS`], and the
/// whole cut to [`MAX_MESSAGE_CHARS`].
pub(crate) fn json_error(source: &serde_json::Error) -> serde_json::Error {
    let message = source.to_string();
    let mut shown = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    let mut rest = message.as_str();
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        shown.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else {
            // An unterminated quote: keep nothing of it.
            rest = "";
            break;
        };
        if quote == '`' {
            shown.push_str(&cap(&after[..end], MAX_QUOTED_CHARS));
        } else {
            shown.push('…');
        }
        shown.push(quote);
        rest = &after[end + 1..];
    }
    shown.push_str(rest);
    serde_json::Error::custom(cap(&shown, MAX_MESSAGE_CHARS))
}

/// What a secret is replaced with in text shown to people.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// `text` with every non-empty secret of `secrets` replaced by
/// [`REDACTED`].
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, REDACTED)
        })
}

/// A response `body` with `secrets` blanked; as it was when it holds none
/// (or is not UTF-8, which no secret sent as text can appear in as is).
pub(crate) fn without_secrets<'a>(
    body: &'a [u8],
    secrets: &[secrecy::SecretString],
) -> std::borrow::Cow<'a, [u8]> {
    use secrecy::ExposeSecret;
    let Ok(text) = std::str::from_utf8(body) else {
        return std::borrow::Cow::Borrowed(body);
    };
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets {
        forms.extend(echoed_forms(secret.expose_secret()));
    }
    // The longest first, so that no shorter form leaves part of a longer.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    if !forms
        .iter()
        .any(|form| !form.is_empty() && text.contains(form.as_str()))
    {
        forms
            .iter_mut()
            .for_each(secrecy::zeroize::Zeroize::zeroize);
        return std::borrow::Cow::Borrowed(body);
    }
    let exposed: Vec<&str> = forms.iter().map(String::as_str).collect();
    let redacted = redact(text, &exposed);
    forms
        .iter_mut()
        .for_each(secrecy::zeroize::Zeroize::zeroize);
    std::borrow::Cow::Owned(redacted.into_bytes())
}

/// The forms in which a body may echo `secret`: as sent, escaped in a JSON
/// string (as serde writes it, with `/` as `\/` as PHP writes it, and
/// with every non-ASCII character as `\uXXXX`), and percent-encoded as in
/// an echoed URL.
fn echoed_forms(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(secret)
        .to_owned();
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    let percent = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    vec![
        secret.to_owned(),
        json.replace('/', "\\/"),
        ascii.replace('/', "\\/"),
        json,
        ascii,
        percent,
    ]
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn a_secret_echoed_escaped_in_json_or_percent_encoded_is_blanked() {
        let secret = secrecy::SecretString::from("zq/xw\"é");
        for body in [
            r#"{"message":"bad key zq\/xw\"\u00e9"}"#,
            r#"{"message":"bad key zq/xw\"é"}"#,
            r#"{"message":"bad key zq\/xw\"é"}"#,
            "bad key zq%2Fxw%22%C3%A9",
        ] {
            let blanked = without_secrets(body.as_bytes(), std::slice::from_ref(&secret));
            let blanked = String::from_utf8(blanked.into_owned()).unwrap();
            assert!(blanked.contains(REDACTED), "{body} -> {blanked}");
            assert!(!blanked.contains("xw"), "{body} -> {blanked}");
        }
    }

    #[test]
    fn cap_cuts_on_a_character_boundary() {
        assert_eq!(cap("héllo wörld", 4), "héll…");
        assert_eq!(cap("short", 10), "short");
        assert_eq!(cap("ééé", 3), "ééé");
    }

    #[test]
    fn plain_text_drops_tags_and_cuts_long_messages() {
        assert_eq!(
            plain_text("<strong>Error:</strong> Unknown username."),
            "Error: Unknown username."
        );
        let long = "x".repeat(MAX_MESSAGE_CHARS + 10);
        assert_eq!(plain_text(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn codes_are_cut_short() {
        assert_eq!(code(" invalid_grant "), "invalid_grant");
        assert_eq!(code(&"c".repeat(5000)).chars().count(), MAX_CODE_CHARS + 1);
    }

    #[test]
    fn json_errors_leave_out_string_values_and_keep_field_names() {
        #[derive(Debug, Deserialize)]
        #[expect(dead_code, reason = "only decoded")]
        struct Me {
            id: u64,
            name: String,
        }
        let secret = "internal-service-data ".repeat(100);
        let wrong_type =
            serde_json::from_str::<Me>(&format!(r#"{{"id": "{secret}", "name": "x"}}"#))
                .unwrap_err();
        let missing = serde_json::from_str::<Me>(r#"{"id": 1}"#).unwrap_err();

        let shown = json_error(&wrong_type).to_string();
        assert!(!shown.contains("internal-service-data"), "{shown}");
        assert!(
            shown.starts_with("invalid type: string \"…\", expected u64"),
            "{shown}"
        );
        assert_eq!(
            json_error(&missing).to_string(),
            "missing field `name` at line 1 column 9"
        );
    }
}
