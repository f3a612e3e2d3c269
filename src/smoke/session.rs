//! Steps 1-4, shared by the deterministic and the real-checkout smoke: health, log in or
//! register, read the balance (and the billing account's ids), create a checkout session.

use reqwest::Method;
use serde_json::Value;

use crate::app_client::{AppClient, Buyer, Checkout, LoginOutcome, get_path};
use crate::error::{Error, Result};
use crate::http;

use super::steps::Steps;

/// The billing account as the app reports it.
#[derive(Debug, Clone)]
pub struct Account {
    pub balance_cents: i64,
    pub id: Option<String>,
    pub org_id: Option<String>,
}

/// What steps 1-4 established.
#[derive(Debug, Clone)]
pub struct Opened {
    pub buyer: Buyer,
    pub account: Account,
    pub checkout: Checkout,
}

pub struct OpenOptions<'a> {
    pub buyer: Buyer,
    pub amount_cents: i64,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

pub async fn open(steps: &mut Steps, client: &mut AppClient, o: OpenOptions<'_>) -> Result<Opened> {
    steps
        .run("health", async {
            let reply = client.health().await?;
            Ok(((), format!("{}", reply.status)))
        })
        .await?;
    let buyer = o.buyer;
    steps
        .run("login", async {
            let outcome = client.login_or_register(&buyer).await?;
            let verb = match outcome {
                LoginOutcome::LoggedIn => "logged in as",
                LoginOutcome::Registered => "registered",
            };
            Ok(((), format!("{verb} {}", buyer.email)))
        })
        .await?;
    let account = steps
        .run("balance", async {
            let account = read_account(client).await?;
            let detail = format!("{} cents", account.balance_cents);
            Ok((account, detail))
        })
        .await?;
    let checkout = steps
        .run("checkout", async {
            let c = client
                .create_checkout(o.amount_cents, o.success_url, o.cancel_url)
                .await?;
            let detail = format!("session {} for {} cents", c.session_id, o.amount_cents);
            Ok((c, detail))
        })
        .await?;
    Ok(Opened {
        buyer,
        account,
        checkout,
    })
}

/// Reads the billing account: the balance from the configured field, and `id` / `org_id` next to
/// it (the webhook metadata needs them).
pub async fn read_account(client: &AppClient) -> Result<Account> {
    let path = client.contract.paths.account.clone();
    let reply = client.request(Method::GET, &path, None).await?;
    if !reply.status.is_success() {
        return Err(Error::failed(format!(
            "GET {path} answered {}: {}",
            reply.status,
            reply.excerpt()
        )));
    }
    let value = reply.json().ok_or_else(|| {
        Error::failed(format!(
            "GET {path} answered {} with a body that is not JSON: {}",
            reply.status,
            reply.excerpt()
        ))
    })?;
    account_from(&value, &client.contract.fields.balance_cents)
        .map_err(|why| Error::failed(format!("GET {path}: {why}")))
}

fn account_from(value: &Value, balance_field: &str) -> std::result::Result<Account, String> {
    let balance_cents = get_path(value, balance_field)
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            format!(
                "no integer `{balance_field}` in {}",
                http::excerpt(&value.to_string(), 200)
            )
        })?;
    let parent = balance_field
        .rsplit_once('.')
        .map_or(String::new(), |(p, _)| format!("{p}."));
    let text = |name: &str| {
        get_path(value, &format!("{parent}{name}")).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    Ok(Account {
        balance_cents,
        id: text("id"),
        org_id: text("org_id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn account_ids_sit_next_to_the_balance() {
        let v = json!({"account": {"id": "acct_1", "org_id": 7, "balance_cents": 500}});
        let a = account_from(&v, "account.balance_cents").unwrap();
        assert_eq!(a.balance_cents, 500);
        assert_eq!(a.id.as_deref(), Some("acct_1"));
        assert_eq!(a.org_id.as_deref(), Some("7"));
        let flat = account_from(&json!({"balance_cents": 1}), "balance_cents").unwrap();
        assert_eq!((flat.balance_cents, flat.id), (1, None));
        let e = account_from(&json!({"account": {}}), "account.balance_cents").unwrap_err();
        assert!(e.contains("account.balance_cents"));
    }
}
