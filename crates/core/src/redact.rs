//! Secrets out of what is stored: header values and query parameters that
//! carry credentials are replaced by [`MASK`] before a task run, a history row
//! or an incident is written.
//!
//! Always masked: the headers in [`SECRET_HEADERS`] and the query parameters in
//! [`SECRET_PARAMS`], plus the names configured in `[redaction]`
//! ([`RedactionConfig`]), all compared without case. What a script sees is not
//! changed: only the stored copy is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Headers whose values are credentials by definition.
pub const SECRET_HEADERS: [&str; 5] = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// Query parameters that conventionally carry credentials.
pub const SECRET_PARAMS: [&str; 9] =
    ["api_key", "apikey", "api-key", "access_token", "client_secret", "password", "secret", "token", "signature"];

/// `[redaction]`: further header and query parameter names to mask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Header names masked besides [`SECRET_HEADERS`].
    pub headers: Vec<String>,
    /// Query parameter names masked besides [`SECRET_PARAMS`].
    pub query_params: Vec<String>,
}

impl RedactionConfig {
    pub fn is_secret_header(&self, name: &str) -> bool {
        let name = name.trim();
        SECRET_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) || self.headers.iter().any(|h| h.trim().eq_ignore_ascii_case(name))
    }

    pub fn is_secret_param(&self, name: &str) -> bool {
        let name = decode(name.trim());
        SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(&name))
            || self.query_params.iter().any(|p| p.trim().eq_ignore_ascii_case(&name))
    }

    /// A header map (names to values or arrays of values) with secret values masked.
    pub fn headers(&self, headers: &Map<String, Value>) -> Map<String, Value> {
        self.masked(headers, |name| self.is_secret_header(name))
    }

    /// A query map (names to values) with secret values masked.
    pub fn query(&self, query: &Map<String, Value>) -> Map<String, Value> {
        self.masked(query, |name| self.is_secret_param(name))
    }

    fn masked(&self, map: &Map<String, Value>, secret: impl Fn(&str) -> bool) -> Map<String, Value> {
        map.iter()
            .map(|(k, v)| (k.clone(), if secret(k) && !v.is_null() { Value::String(MASK.into()) } else { v.clone() }))
            .collect()
    }

    /// A URL with the password of its user info and the values of secret query
    /// parameters masked; the rest is left as written.
    pub fn url(&self, url: &str) -> String {
        let (before_fragment, fragment) = match url.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (url, None),
        };
        let (base, query) = match before_fragment.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (before_fragment, None),
        };
        let mut out = mask_password(base);
        if let Some(q) = query {
            out.push('?');
            let parts: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if self.is_secret_param(name) => format!("{name}={MASK}"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&parts.join("&"));
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }

    /// The config of an HTTP task as it may be stored: `url` and `headers`
    /// masked, and so are the config fields that `{placeholders}` in a masked
    /// place would fill (`"authorization": "Bearer {token}"` masks `token`).
    pub fn task_request(&self, config: &Value) -> Value {
        let Value::Object(map) = config else { return config.clone() };
        let mut out = map.clone();
        let mut filled = Vec::new();
        if let Some(Value::String(url)) = map.get("url") {
            out.insert("url".into(), Value::String(self.url(url)));
            if let Some((_, query)) = url.split('#').next().and_then(|u| u.split_once('?')) {
                for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
                    if self.is_secret_param(name) {
                        filled.extend(placeholders(value));
                    }
                }
            }
            if let Some(userinfo) = url.split_once("://").and_then(|(_, rest)| rest.split(['/', '?', '#']).next()?.rsplit_once('@'))
            {
                filled.extend(placeholders(userinfo.0));
            }
        }
        if let Some(Value::Object(headers)) = map.get("headers") {
            for (name, value) in headers {
                if self.is_secret_header(name)
                    && let Value::String(text) = value
                {
                    filled.extend(placeholders(text));
                }
            }
            out.insert("headers".into(), Value::Object(self.headers(headers)));
        }
        let mut out = Value::Object(out);
        for path in filled {
            mask_path(&mut out, &path);
            if let Some(body) = out.get_mut("body") {
                mask_path(body, &path);
            }
        }
        out
    }
}

/// `scheme://user:password@host...` with the password masked.
fn mask_password(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else { return base.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:{MASK}@{host}{path}"),
            None => base.to_string(),
        },
        None => base.to_string(),
    }
}

/// The `{name}` placeholders in a text.
fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].trim();
        if !name.is_empty() {
            out.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

/// Masks the value at a dotted path, if there is one.
fn mask_path(value: &mut Value, path: &str) {
    let mut current = value;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(next) = current.as_object_mut().and_then(|m| m.get_mut(part)) else { return };
        if parts.peek().is_none() {
            if !next.is_null() {
                *next = Value::String(MASK.into());
            }
            return;
        }
        current = next;
    }
}

/// Percent-decoding of a parameter name, enough to compare it (`api%5Fkey`).
fn decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_keep_their_shape_with_secrets_masked() {
        let r = RedactionConfig { query_params: vec!["sessionId".into()], ..Default::default() };
        assert_eq!(
            r.url("https://u:pw@h.example:8443/p?a=1&api_key=s3cret&API%5FKEY=x&sessionid=7&b#frag"),
            "https://u:***@h.example:8443/p?a=1&api_key=***&API%5FKEY=***&sessionid=***&b#frag"
        );
        assert_eq!(r.url("http://h/x"), "http://h/x");
        assert_eq!(r.url("http://user@h/x?token="), "http://user@h/x?token=***");
    }

    #[test]
    fn task_requests_mask_headers_and_what_fills_them() {
        let r = RedactionConfig { headers: vec!["X-Signature".into()], ..Default::default() };
        let config = json!({
            "url": "http://h/x?api_key={key}&q=1",
            "headers": {"Authorization": "Bearer {auth.token}", "x-signature": "abc", "accept": "application/json"},
            "key": "k-secret",
            "auth": {"token": "t-secret"},
            "body": {"key": "also-secret", "other": 1}
        });
        let stored = r.task_request(&config);
        assert_eq!(
            stored,
            json!({
                "url": "http://h/x?api_key=***&q=1",
                "headers": {"Authorization": "***", "x-signature": "***", "accept": "application/json"},
                "key": "***",
                "auth": {"token": "***"},
                "body": {"key": "***", "other": 1}
            })
        );
        assert_eq!(r.headers(&json!({"set-cookie": ["a", "b"], "x": "y"}).as_object().unwrap().clone()), *json!({"set-cookie": "***", "x": "y"}).as_object().unwrap());
    }
}
