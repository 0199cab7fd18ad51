//! Definitions: publish, validate and read back components (written once the
//! component store lands).

use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
