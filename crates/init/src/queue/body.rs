//! [`JobBody`]: what a job (or an incident a retry re-runs) stores to run its
//! transition later.
//!
//! # Stored format
//! The body is a JSON object with camelCase fields, every one optional:
//! `first` (the hop to run: `{"kind": "start" | "timeout" | "resume" |
//! "named", "correlation", "transition", "caller"}`), `attributes`, `headers`,
//! `query` (the request; written sealed instead, as `sealed`, see
//! [`super::seal`]), `attempt` (a retry's attempt number), `origin` (an
//! incident's), and `leaseToken`, `leaseJobId`, `leaseUntil` (a lease
//! recovery job's).
//!
//! This is the format bodies were written in before the type existed, so jobs
//! already in a queue at an upgrade run unchanged and no migration is needed.
//! Reading keeps the earlier reader's tolerance: each field is read on its own,
//! a field that does not have the expected shape counts as absent, and a hop
//! that cannot be read runs the job's own transition
//! ([`JobBody::first_or`]). Unknown fields (a test's own body) are ignored.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;
use vnext_core::machine::Caller;

/// The first hop of a run: what a request, a job or a retry starts with.
#[derive(Debug, Clone, PartialEq)]
pub enum First {
    Start,
    Named { key: String, caller: Caller },
    Timeout,
    /// A parked parent resumes: its child (correlation) completed.
    Resume { correlation: Uuid },
}

/// The stored shape of [`First`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StoredFirst {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    correlation: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    transition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    caller: Option<String>,
}

const START: &str = "start";
const TIMEOUT: &str = "timeout";
const RESUME: &str = "resume";
const NAMED: &str = "named";
const CLIENT: &str = "client";
const SYSTEM: &str = "system";

impl StoredFirst {
    fn of(first: &First) -> StoredFirst {
        let kind = |k: &str| Some(k.to_string());
        match first {
            First::Start => StoredFirst { kind: kind(START), ..StoredFirst::default() },
            First::Timeout => StoredFirst { kind: kind(TIMEOUT), ..StoredFirst::default() },
            First::Resume { correlation } => {
                StoredFirst { kind: kind(RESUME), correlation: Some(*correlation), ..StoredFirst::default() }
            }
            First::Named { key, caller } => StoredFirst {
                kind: kind(NAMED),
                transition: Some(key.clone()),
                caller: Some(if *caller == Caller::Client { CLIENT } else { SYSTEM }.to_string()),
                correlation: None,
            },
        }
    }

    fn read(&self, fallback_key: &str) -> First {
        let named = |key: Option<&str>, caller: Option<&str>| First::Named {
            key: key.unwrap_or(fallback_key).to_string(),
            caller: if caller == Some(CLIENT) { Caller::Client } else { Caller::System },
        };
        match self.kind.as_deref() {
            Some(START) => First::Start,
            Some(TIMEOUT) => First::Timeout,
            Some(RESUME) => match self.correlation {
                Some(correlation) => First::Resume { correlation },
                None => named(None, None),
            },
            _ => named(self.transition.as_deref(), self.caller.as_deref()),
        }
    }
}

/// What a job stores to run its transition later; see the module docs for
/// the stored format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobBody {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    first: Option<StoredFirst>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    attributes: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    headers: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    query: Option<Map<String, Value>>,
    /// `headers` and `query`, encrypted ([`JobBody::sealed`]).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    attempt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    lease_token: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    lease_job_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    lease_until: Option<DateTime<Utc>>,
}

/// A field of the wrong shape reads as absent, as it did before the type.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

impl JobBody {
    /// The body of a job that runs `first` with nothing else.
    pub fn hop(first: &First) -> JobBody {
        JobBody { first: Some(StoredFirst::of(first)), ..JobBody::default() }
    }

    /// The body of a job that runs `first` for a request.
    pub fn request(first: &First, attributes: Value, headers: Map<String, Value>, query: Map<String, Value>) -> JobBody {
        JobBody { attributes: Some(attributes), headers: Some(headers), query: Some(query), ..JobBody::hop(first) }
    }

    /// The body of a lease recovery job: the lease it was made for.
    pub fn lease(token: Option<Uuid>, job_id: Option<Uuid>, until: DateTime<Utc>) -> JobBody {
        JobBody { lease_token: token, lease_job_id: job_id, lease_until: Some(until), ..JobBody::default() }
    }

    /// The same body with its headers and query encrypted into `sealed`
    /// (nothing to do when it has none).
    #[must_use]
    pub fn sealed(mut self, sealer: &super::Sealer) -> JobBody {
        let headers = self.headers.take().unwrap_or_default();
        let query = self.query.take().unwrap_or_default();
        if headers.is_empty() && query.is_empty() {
            return self;
        }
        let plain = serde_json::json!({ "headers": headers, "query": query }).to_string();
        self.sealed = Some(sealer.seal(plain.as_bytes()));
        self
    }

    /// The same body with a sealed part opened back into headers and query.
    /// A part that does not open (the secret changed) is dropped, logged.
    #[must_use]
    pub fn opened(mut self, sealer: &super::Sealer) -> JobBody {
        let Some(sealed) = self.sealed.take() else { return self };
        let opened = sealer.open(&sealed).and_then(|plain| serde_json::from_slice::<Value>(&plain).ok());
        let Some(Value::Object(mut parts)) = opened else {
            tracing::warn!("a job's sealed request headers do not open (was execution.shared_secret changed?); running it without them");
            return self;
        };
        let mut take = |name: &str| match parts.remove(name) {
            Some(Value::Object(map)) => Some(map),
            _ => None,
        };
        self.headers = take("headers");
        self.query = take("query");
        self
    }

    /// The same body for attempt `attempt` of a retry.
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> JobBody {
        self.attempt = Some(u64::from(attempt));
        self
    }

    /// The same body naming where its run came from (incidents).
    #[must_use]
    pub fn with_origin(mut self, origin: &str) -> JobBody {
        self.origin = Some(origin.to_string());
        self
    }

    /// Where the run came from, as named by [`JobBody::with_origin`].
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Reads a stored body; anything that is not an object reads as empty.
    pub fn from_value(value: &Value) -> JobBody {
        JobBody::deserialize(value).unwrap_or_default()
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a job body always serializes")
    }

    /// The hop to run; without a readable one, `fallback_key` (the job's own
    /// transition) as the system.
    pub fn first_or(&self, fallback_key: &str) -> First {
        self.first.clone().unwrap_or_default().read(fallback_key)
    }

    /// The request's attributes (`null` when none).
    pub fn attributes(&self) -> Value {
        self.attributes.clone().unwrap_or(Value::Null)
    }

    pub fn headers(&self) -> Map<String, Value> {
        self.headers.clone().unwrap_or_default()
    }

    pub fn query(&self) -> Map<String, Value> {
        self.query.clone().unwrap_or_default()
    }

    /// The attempt a retry runs (1 when the body names none).
    pub fn attempt(&self) -> u32 {
        self.attempt.map_or(1, |n| u32::try_from(n.max(1)).unwrap_or(u32::MAX))
    }

    /// The lease a recovery job was made for, if it names one.
    pub fn lease_token(&self) -> Option<Uuid> {
        self.lease_token
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_written_before_the_type_read_the_same() {
        let correlation = Uuid::now_v7();
        let cases = [
            (json!({"kind": "start"}), First::Start),
            (json!({"kind": "timeout"}), First::Timeout),
            (json!({"kind": "resume", "correlation": correlation}), First::Resume { correlation }),
            (json!({"kind": "resume", "correlation": 7}), First::Named { key: "fallback".into(), caller: Caller::System }),
            (
                json!({"kind": "named", "transition": "approve", "caller": "client"}),
                First::Named { key: "approve".into(), caller: Caller::Client },
            ),
            (json!({"kind": "named", "caller": "other"}), First::Named { key: "fallback".into(), caller: Caller::System }),
            (json!(null), First::Named { key: "fallback".into(), caller: Caller::System }),
        ];
        for (first, expected) in cases {
            let body = JobBody::from_value(&json!({"attributes": {"a": 1}, "headers": {"h": "v"}, "query": null, "first": first}));
            assert_eq!(body.first_or("fallback"), expected, "{first}");
            assert_eq!(body.attributes(), json!({"a": 1}));
            assert_eq!(body.headers().get("h"), Some(&json!("v")));
            assert!(body.query().is_empty());
        }
    }

    #[test]
    fn written_bodies_keep_the_stored_format() {
        let first = First::Named { key: "approve".into(), caller: Caller::Client };
        let body = JobBody::request(&first, json!({"a": 1}), Map::new(), Map::new()).with_attempt(3);
        assert_eq!(
            body.to_value(),
            json!({"attributes": {"a": 1}, "headers": {}, "query": {}, "attempt": 3,
                   "first": {"kind": "named", "transition": "approve", "caller": "client"}})
        );
        let read = JobBody::from_value(&body.to_value());
        assert_eq!(read.first_or("x"), first);
        assert_eq!(read.attempt(), 3);
        let correlation = Uuid::now_v7();
        assert_eq!(
            JobBody::hop(&First::Resume { correlation }).to_value(),
            json!({"first": {"kind": "resume", "correlation": correlation}})
        );
    }

    #[test]
    fn headers_and_query_are_stored_sealed() {
        let sealer = super::super::Sealer::new("a-secret-of-at-least-some-length");
        let mut headers = Map::new();
        headers.insert("authorization".into(), json!("Bearer s3cret-1"));
        let mut query = Map::new();
        query.insert("api_key".into(), json!("s3cret-2"));
        let first = First::Named { key: "approve".into(), caller: Caller::Client };
        let body = JobBody::request(&first, json!({"a": 1}), headers.clone(), query.clone()).sealed(&sealer);
        let stored = body.to_value();
        let text = stored.to_string();
        assert!(!text.contains("s3cret") && stored.get("headers").is_none() && stored["sealed"].is_string(), "{text}");
        assert_eq!(stored["attributes"], json!({"a": 1}), "the payload stays readable");
        let read = JobBody::from_value(&stored).opened(&sealer);
        assert_eq!((read.headers(), read.query()), (headers, query));
        assert_eq!(read.first_or("x"), first);
        let other = JobBody::from_value(&stored).opened(&super::super::Sealer::new("another-secret"));
        assert!(other.headers().is_empty() && other.query().is_empty());
        assert_eq!(other.attributes(), json!({"a": 1}));
        let bare = JobBody::hop(&first).sealed(&sealer).to_value();
        assert!(bare.get("sealed").is_none(), "{bare}");
    }

    #[test]
    fn attempts_and_lease_tokens_read_leniently() {
        assert_eq!(JobBody::from_value(&json!({"attempt": 0})).attempt(), 1);
        assert_eq!(JobBody::from_value(&json!({"attempt": "two"})).attempt(), 1);
        assert_eq!(JobBody::from_value(&json!("not an object")).attempt(), 1);
        let token = Uuid::new_v4();
        let until = Utc::now();
        let body = JobBody::lease(Some(token), None, until).to_value();
        assert_eq!(body["leaseToken"], json!(token));
        assert_eq!(JobBody::from_value(&body).lease_token(), Some(token));
        assert_eq!(JobBody::from_value(&json!({"leaseToken": null})).lease_token(), None);
    }
}
