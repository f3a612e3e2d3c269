//! Hosted checkout (to be completed).

use std::sync::Arc;

use axum::Router;

use super::Shared;
use crate::error::{Error, Result};

pub fn checkout_url(app_url: &str, session_id: &str) -> String {
    format!(
        "{app_url}/checkout/{session_id}#fid{}",
        crate::secret::random_alnum(64)
    )
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}

pub async fn pay_with_form_post(
    _client: &reqwest::Client,
    _checkout_url: &str,
    _card_number: &str,
) -> Result<()> {
    Err(Error::usage("not yet"))
}
