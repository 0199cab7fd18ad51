//! The HTTP side of the client verbs: which URL, which key, one request, and
//! what a failure prints.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

use super::Remote;

/// A configuration may listen on port 0 (any free port), which no client can
/// guess; then the app's documented default address is tried.
const FALLBACK_URL: &str = "http://127.0.0.1:4201";

/// A connection to one API: base URL, API key, output mode.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
    /// `--json`: print the server's body as it came.
    pub json: bool,
}

/// A 2xx answer: its status, its body as text (for `--json`) and as JSON.
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub value: Value,
}

/// Why a verb did not get its answer.
#[derive(Debug)]
pub enum Failure {
    /// The command line or a local input is wrong (exit 2).
    Usage(String),
    /// Nothing answered at the URL, or the connection broke (exit 3).
    Unreachable { url: String, cause: String },
    /// The server answered with an error status (exit 1).
    Problem { status: u16, text: String, value: Option<Value> },
}

impl Api {
    pub fn new(config: Option<&Path>, remote: &Remote) -> Result<Api, Failure> {
        let text = match &remote.url {
            Some(url) => url.clone(),
            None => default_url(config)?,
        };
        let base = Url::parse(&text).map_err(|e| Failure::Usage(format!("--url `{text}` is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Failure::Usage(format!("--url `{text}` must be an http:// or https:// URL")));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("vnext/", env!("CARGO_PKG_VERSION")))
            // Connecting is quick or it fails; a `--sync` run may take its time.
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Failure::Usage(format!("cannot set up the HTTP client: {e}")))?;
        let key = remote.api_key.clone().filter(|k| !k.trim().is_empty());
        Ok(Api { http, base, key, json: remote.json })
    }

    /// `GET /api/v1/<segments…>?<query>`.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Answer, Failure> {
        self.call(Method::GET, segments, query, None).await
    }

    /// One request; each path segment is percent-encoded on its own, so a
    /// key with `/` or spaces names one instance.
    pub async fn call(&self, method: Method, segments: &[&str], query: &[(&str, String)], body: Option<&Value>) -> Result<Answer, Failure> {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in Api::new").pop_if_empty().extend(["api", "v1"]).extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = self.http.request(method, url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        let value = serde_json::from_str::<Value>(&text).ok();
        if (200..300).contains(&status) {
            Ok(Answer { status, text, value: value.unwrap_or(Value::Null) })
        } else {
            Err(Failure::Problem { status, text, value })
        }
    }

    /// Prints an answer: as it came with `--json`, else through `table`.
    pub fn show(&self, answer: &Answer, table: impl FnOnce(&Value)) {
        if self.json {
            println!("{}", answer.text.trim_end());
        } else {
            table(&answer.value);
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        Failure::Unreachable { url: self.base.as_str().trim_end_matches('/').to_string(), cause: cause_of(error) }
    }
}

/// The API's address from the configuration (`app.listen`, then `app.url`).
fn default_url(config: Option<&Path>) -> Result<String, Failure> {
    let config = vnext_init::config::Config::load(config)
        .map_err(|e| Failure::Usage(format!("{e} (the API's address comes from the configuration unless --url gives it)")))?;
    Ok(url_of_listen(&config.app.listen).unwrap_or_else(|| if config.app.url.is_empty() { FALLBACK_URL.to_string() } else { config.app.url }))
}

/// `0.0.0.0:4201` → `http://127.0.0.1:4201`: a wildcard address is reached on
/// loopback. `None` for port 0, whose real port only the server knows.
pub fn url_of_listen(listen: &str) -> Option<String> {
    let (host, port) = listen.trim().rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    Some(format!("http://{host}:{port}"))
}

/// What went wrong on the wire, in a few words ("connection refused").
fn cause_of(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "timed out".to_string(),
                _ => io.to_string(),
            };
        }
        source = e.source();
    }
    if error.is_timeout() {
        return "timed out".to_string();
    }
    let mut chain = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    chain.join(": ")
}

impl Failure {
    /// Prints the failure on stderr (with `--json`, a problem body on stdout
    /// too) and returns the exit code.
    pub fn report(self, json: bool) -> ExitCode {
        match self {
            Failure::Usage(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
            Failure::Unreachable { url, cause } => {
                eprintln!("error: cannot reach the API at {url}: {cause}");
                eprintln!("  is the runtime running there (`vnext up`, `vnext app`)? --url names another address");
                ExitCode::from(3)
            }
            Failure::Problem { status, text, value } => {
                if json && !text.trim().is_empty() {
                    println!("{}", text.trim_end());
                }
                match value.as_ref().filter(|v| v.is_object()) {
                    Some(problem) => eprint!("{}", describe_problem(status, problem)),
                    None => eprintln!("error: HTTP {status}: {}", first_line(&text)),
                }
                ExitCode::FAILURE
            }
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("(empty body)").trim();
    line.chars().take(200).collect()
}

/// Members every problem has; the others are the code's own (`state`,
/// `available`, `limit`, …) and are printed by name.
const STANDARD: &[&str] = &["type", "title", "status", "detail", "instance", "errorCode", "prefix", "code", "traceId", "errors", "violations"];

/// A problem+json body for people: title, status and code, detail, every
/// violation with its pointer, the code's own members, the trace id.
pub fn describe_problem(status: u16, problem: &Value) -> String {
    use std::fmt::Write;
    let text = |name: &str| problem.get(name).and_then(Value::as_str).unwrap_or("");
    let code = [text("errorCode"), text("code")].into_iter().find(|c| !c.is_empty()).unwrap_or("no error code");
    let title = Some(text("title")).filter(|t| !t.is_empty()).unwrap_or("request refused");
    let mut out = format!("error: {title} (HTTP {status}, {code})\n");
    if !text("detail").is_empty() {
        let _ = writeln!(out, "  {}", text("detail"));
    }
    let violations = problem.get("violations").and_then(Value::as_array).filter(|v| !v.is_empty());
    if let Some(violations) = violations {
        for v in violations {
            let pointer = v.get("pointer").and_then(Value::as_str).unwrap_or("");
            let pointer = if pointer.is_empty() { "(whole document)" } else { pointer };
            let message = v.get("message").and_then(Value::as_str).unwrap_or("");
            match v.get("code").and_then(Value::as_str) {
                Some(c) => _ = writeln!(out, "  {pointer}: {message} [{c}]"),
                None => _ = writeln!(out, "  {pointer}: {message}"),
            }
        }
    } else if let Some(errors) = problem.get("errors").and_then(Value::as_object) {
        // The engine's `{member: [messages]}` map, when no violations came with it.
        for (member, messages) in errors {
            for message in messages.as_array().into_iter().flatten() {
                let _ = writeln!(out, "  {member}: {}", super::output::cell(message));
            }
        }
    }
    for (name, value) in problem.as_object().into_iter().flatten() {
        if !STANDARD.contains(&name.as_str()) {
            let _ = writeln!(out, "  {name}: {}", super::output::cell(value));
        }
    }
    if status == 401 {
        let _ = writeln!(out, "  hint: give an API key with --api-key or VNEXT_API_KEY (`vnext keys create`)");
    }
    if !text("traceId").is_empty() {
        let _ = writeln!(out, "  traceId: {}", text("traceId"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_listen_address_becomes_a_url_a_client_can_reach() {
        assert_eq!(url_of_listen("127.0.0.1:4201").as_deref(), Some("http://127.0.0.1:4201"));
        assert_eq!(url_of_listen("0.0.0.0:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(url_of_listen("[::]:8080").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(url_of_listen("localhost:9000").as_deref(), Some("http://localhost:9000"));
        assert_eq!(url_of_listen("127.0.0.1:0"), None, "port 0 is only known to the server");
        assert_eq!(url_of_listen("no-port"), None);
    }

    #[test]
    fn a_problem_prints_title_code_detail_pointers_and_its_own_members() {
        let problem = json!({
            "type": "https://httpstatuses.com/409", "title": "Transition not available", "status": 409,
            "errorCode": "conflict.transition.not-available", "code": "transition.not-available",
            "detail": "`approve` is not offered in `draft`", "traceId": "t-1",
            "state": "draft", "available": ["submit", "cancel"],
            "violations": [{ "pointer": "/amount", "message": "must be positive" }, { "pointer": "", "message": "whole" }]
        });
        let text = describe_problem(409, &problem);
        assert!(text.starts_with("error: Transition not available (HTTP 409, conflict.transition.not-available)\n"), "{text}");
        assert!(text.contains("\n  `approve` is not offered in `draft`\n"), "{text}");
        assert!(text.contains("\n  /amount: must be positive\n") && text.contains("(whole document): whole"), "{text}");
        assert!(text.contains("\n  state: draft\n") && text.contains("\n  available: submit, cancel\n"), "{text}");
        assert!(text.ends_with("  traceId: t-1\n"), "{text}");
        assert!(!text.contains("type:"), "{text}");
    }

    #[test]
    fn the_engine_errors_map_is_printed_when_no_violations_came() {
        let problem = json!({ "title": "Bad", "status": 400, "errors": { "/tags": ["must be an array"] } });
        let text = describe_problem(400, &problem);
        assert!(text.contains("error: Bad (HTTP 400, no error code)") && text.contains("  /tags: must be an array"), "{text}");
    }
}
