//! Rows written straight into a flow schema, so read queries can be tested on
//! exactly known data.

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// An instance row of the `order` workflow.
#[derive(Debug, Clone)]
pub struct Seed {
    pub id: Uuid,
    pub key: String,
    pub status: &'static str,
    pub state: String,
    pub data: Value,
    pub data_version: String,
    pub data_version_no: i64,
    pub etag: String,
    pub created_at: DateTime<Utc>,
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

impl Seed {
    pub fn new(key: &str, state: &str, data: Value) -> Seed {
        Seed {
            id: Uuid::new_v4(),
            key: key.to_string(),
            status: "A",
            state: state.to_string(),
            data,
            data_version: "1.0.0".into(),
            data_version_no: 1,
            etag: Uuid::new_v4().simple().to_string(),
            created_at: base_time(),
        }
    }

    pub async fn insert(&self, pool: &PgPool) {
        sqlx::query(
            "INSERT INTO \"order\".instances (id, key, flow_version, status, current_state, data, data_version,
                 data_version_no, etag, tags, created_at, modified_at, completed_at)
             VALUES ($1, $2, '1.0.0', $3::text::\"char\", $4, $5, $6, $7, $8, '{}', $9, $9,
                 CASE WHEN $3 = 'C' THEN $9 END)",
        )
        .bind(self.id)
        .bind(&self.key)
        .bind(self.status)
        .bind(&self.state)
        .bind(&self.data)
        .bind(&self.data_version)
        .bind(self.data_version_no)
        .bind(&self.etag)
        .bind(self.created_at)
        .execute(pool)
        .await
        .expect("seed instance");
    }
}

/// 25 orders `o-00` … `o-24`: amount `i * 100`, completed when `i % 5 == 0`,
/// in `review` when `i` is odd (else `draft`), tier `gold` when `i % 3 == 0`,
/// created `i` minutes after [`base_time`].
pub async fn orders(pool: &PgPool) -> Vec<Seed> {
    let mut out = Vec::new();
    for i in 0..25_i64 {
        let mut s = Seed::new(
            &format!("o-{i:02}"),
            if i % 2 == 1 { "review" } else { "draft" },
            json!({ "amount": i * 100, "customer": { "tier": if i % 3 == 0 { "gold" } else { "silver" }, "name": format!("Customer {i}") } }),
        );
        if i % 5 == 0 {
            s.status = "C";
            s.state = "done".into();
        }
        s.created_at = base_time() + Duration::minutes(i);
        s.insert(pool).await;
        out.push(s);
    }
    out
}

/// A transition row with a data snapshot.
pub async fn transition(pool: &PgPool, instance: Uuid, seq: i64, key: &str, from: Option<&str>, to: &str, data: Option<(&str, i64, Value)>) -> Uuid {
    let id = Uuid::new_v4();
    let at = base_time() + Duration::seconds(seq);
    let (version, number, snapshot) = match data {
        Some((v, n, d)) => (Some(v.to_string()), Some(n), Some(d)),
        None => (None, None, None),
    };
    sqlx::query(
        "INSERT INTO \"order\".transitions (id, instance_id, seq, transition_key, from_state, to_state, trigger_type,
             origin, body, data_version, data_version_no, data, started_at, finished_at, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, 0, 'api', '{}', $7, $8, $9, $10, $10, 1.5)",
    )
    .bind(id)
    .bind(instance)
    .bind(seq)
    .bind(key)
    .bind(from)
    .bind(to)
    .bind(version)
    .bind(number)
    .bind(snapshot)
    .bind(at)
    .execute(pool)
    .await
    .expect("seed transition");
    id
}
