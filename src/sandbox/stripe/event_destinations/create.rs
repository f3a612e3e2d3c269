//! `POST /v2/core/event_destinations`: a destination checked as Stripe checks it and, for
//! `amazon_eventbridge`, its partner event source made in the AWS account and region it names.

use super::params::{json_body, metadata, payload_kind, required, strings, text};
use super::*;

const CREATE_PARAMS: [&str; 11] = [
    "enabled_events",
    "event_payload",
    "name",
    "type",
    "amazon_eventbridge",
    "description",
    "events_from",
    "include",
    "metadata",
    "snapshot_api_version",
    "webhook_endpoint",
];

pub(in crate::sandbox::stripe) async fn create(State(shared): S, call: Call) -> Response {
    let m = try_answer!(json_body(&call.raw));
    if let Some(unknown) = m.keys().find(|k| !CREATE_PARAMS.contains(&k.as_str())) {
        return invalid(
            "parameter_unknown",
            Some(unknown),
            &format!("Received unknown parameter: {unknown}"),
        );
    }
    let kind = try_answer!(text(try_answer!(required(&m, "type")), "type"));
    if kind != "amazon_eventbridge" {
        return invalid(
            "parameter_invalid",
            Some("type"),
            &format!(
                "the sandbox makes event destinations of type amazon_eventbridge only, not {kind:?} \
                 (its webhook endpoints are /v1/webhook_endpoints)"
            ),
        );
    }
    let name = try_answer!(text(try_answer!(required(&m, "name")), "name"));
    let payload = try_answer!(text(
        try_answer!(required(&m, "event_payload")),
        "event_payload"
    ));
    if !matches!(payload.as_str(), "snapshot" | "thin") {
        return invalid(
            "parameter_invalid",
            Some("event_payload"),
            "event_payload must be snapshot or thin",
        );
    }
    try_answer!(validate::max_chars("name", &name, validate::MAX_STRING));
    if let Some(d) = m.get("description").and_then(Value::as_str) {
        try_answer!(validate::max_chars("description", d, validate::MAX_STRING));
    }
    try_answer!(validate::metadata(
        m.get("metadata").unwrap_or(&Value::Null)
    ));
    let enabled_events = try_answer!(strings(
        try_answer!(required(&m, "enabled_events")),
        "enabled_events"
    ));
    try_answer!(validate::enabled_events(
        &enabled_events,
        payload_kind(&payload)
    ));
    let version = match m.get("snapshot_api_version").filter(|v| !v.is_null()) {
        Some(_) if payload == "thin" => {
            return invalid(
                "parameter_invalid",
                Some("snapshot_api_version"),
                "snapshot_api_version is for snapshot events only",
            );
        }
        Some(v) => {
            let v = try_answer!(text(v, "snapshot_api_version"));
            try_answer!(validate::api_version("snapshot_api_version", &v));
            Some(v)
        }
        None if payload == "snapshot" => Some(shared.api_version.clone()),
        None => None,
    };
    let aws = try_answer!(required(&m, "amazon_eventbridge"));
    let account = aws["aws_account_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(
            "parameter_invalid",
            Some("amazon_eventbridge[aws_account_id]"),
            "aws_account_id must be the 12 digits of an AWS account",
        );
    }
    let Some(region) = aws["aws_region"].as_str().filter(|r| !r.is_empty()) else {
        return invalid(
            "parameter_missing",
            Some("amazon_eventbridge[aws_region]"),
            "Missing required param: amazon_eventbridge[aws_region].",
        );
    };
    if !AWS_REGIONS.contains(&region) {
        return invalid(
            "parameter_invalid",
            Some("amazon_eventbridge[aws_region]"),
            "aws_region must be an AWS Region (us-east-1, eu-west-1, …)",
        );
    }
    let events_from = match m.get("events_from").filter(|v| !v.is_null()) {
        Some(v) => try_answer!(strings(v, "events_from")),
        None => vec!["@self".to_owned()],
    };
    if let Some((i, _)) = events_from
        .iter()
        .enumerate()
        .find(|(_, e)| !EVENTS_FROM.contains(&e.as_str()))
    {
        return invalid(
            "parameter_invalid",
            Some(&format!("events_from[{i}]")),
            &format!(
                "events_from must name scopes among {}",
                EVENTS_FROM.join(", ")
            ),
        );
    }
    if shared.stripe.destinations.lock().len() >= MAX_DESTINATIONS {
        return invalid(
            "event_destination_limit_reached",
            None,
            &format!(
                "You have reached the maximum of {MAX_DESTINATIONS} event destinations on this \
                 account. Delete a destination you no longer need to add another."
            ),
        );
    }
    let created = now();
    let mut d = Destination {
        id: format!("ed_test_{}", secret::random_alnum(40)),
        name,
        description: m
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        enabled_events,
        event_payload: payload,
        events_from,
        metadata: metadata(m.get("metadata")),
        snapshot_api_version: version,
        enabled: true,
        disabled_reason: None,
        aws_account_id: account,
        aws_region: region.to_owned(),
        aws_event_source_arn: String::new(),
        created: created.clone(),
        updated: created,
    };
    let destinations = &shared.stripe.destinations;
    let made = match destinations.client(region).await {
        Some(client) => client
            .create_partner_event_source(&d.source_name(), &d.aws_account_id)
            .await
            .map_err(|e| e.to_string()),
        None => Err(
            "the sandbox was given no --aws-endpoint-url to play Stripe's partner \
                     account against"
                .to_owned(),
        ),
    };
    match made {
        Ok(arn) => d.aws_event_source_arn = arn,
        Err(why) => {
            shared.out.warn(format!(
                "event destination {}: no partner event source made ({why}); it is disabled",
                d.id
            ));
            d.enabled = false;
            d.disabled_reason = Some("no_aws_event_source_exists".into());
        }
    }
    {
        // Checked again under the lock: concurrent creates must not pass the cap together.
        let mut all = destinations.lock();
        if all.len() >= MAX_DESTINATIONS {
            drop(all);
            return invalid(
                "event_destination_limit_reached",
                None,
                &format!("You have reached the maximum of {MAX_DESTINATIONS} event destinations."),
            );
        }
        all.push(d.clone());
    }
    shared.stripe_touched();
    axum::Json(destinations.render(&d, shared.livemode()).await).into_response()
}
