//! Routes (`--target-events`, `--target-match`, a config target's `events` and `match`): each
//! developer's deployment gets only the events of its own site, across a SIGHUP and a SIGKILL, and
//! an event no route lets through is answered without being spooled.

use std::collections::BTreeSet;

use super::*;

/// A `event_type` event for the deployment at `origin` (`data.object.metadata.siteOrigin`).
fn for_site(event_type: &str, origin: &str) -> (String, String, String) {
    let opts = RenderOptions {
        sets: vec![
            format!("data.object.metadata.siteOrigin={origin}")
                .parse()
                .unwrap(),
        ],
        create_path: true,
        ..Default::default()
    };
    render_signed(event_type, INCOMING, opts)
}

/// The seed case: developers' deployments share one Stripe test account; each gets the events
/// of its own site. James is routed by flags, Ana by the config (reloaded with SIGHUP). Nothing
/// a route excludes is delivered, nothing it includes is lost across a SIGHUP and a SIGKILL,
/// and an event no route lets through is answered without being spooled.
#[test]
fn routed_targets_get_only_their_events_across_a_sighup_and_a_sigkill() {
    const JAMES: &str = "https://james.example";
    const ANA: &str = "https://ana.example";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ana = Recorder::start(d, "ana", None);
    let james_port = free_port();
    let james_url = format!("http://127.0.0.1:{james_port}/hook");
    let spool = d.join("spool");
    let config_with = |ana_events: &str| {
        format!(
            "[fanout]\nlisten = \"127.0.0.1:{}\"\nspool = \"{}\"\n[[fanout.target]]\nname = \"ana\"\nurl = \"{}\"\nevents = [{ana_events}]\nmatch = {{ \"data.object.metadata.siteOrigin\" = [\"{ANA}\", \"https://ana2.example\"] }}\n",
            free_port(),
            spool.display(),
            ana.url
        )
    };
    let config = write_file(d, "stripe-ops.toml", &config_with("\"checkout.session.*\""));
    let incoming = secret_file(d, "incoming", INCOMING);
    let relay_args = [
        "--verify-secret-file",
        incoming.as_str(),
        "--target",
        &format!("james={james_url}"),
        "--target-events",
        "james=checkout.session.*,invoice.paid",
        "--target-match",
        &format!("james=data.object.metadata.siteOrigin={JAMES}"),
        "--retry-base",
        "20ms",
        "--retry-max",
        "200ms",
    ]
    .map(str::to_owned);
    let start = |config: &Path| {
        let mut cmd = bin();
        cmd.env("STRIPE_OPS_CONFIG", config);
        let args: Vec<&str> = relay_args.iter().map(String::as_str).collect();
        Fanout::start_with(cmd, d, &args)
    };
    let mut relay = start(&config);
    let send = |relay: &Fanout, event: (String, String, String)| -> (String, Value) {
        let (id, body, header) = event;
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200, "{answer}");
        (id, answer)
    };
    let filtered_for = |answer: &Value, name: &str| {
        answer["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == name && t["filtered"] == true)
    };

    // James is down: his events wait in the spool; Ana's are delivered.
    let (j1, a) = send(&relay, for_site("checkout.session.completed", JAMES));
    assert!(filtered_for(&a, "ana") && a["spooled"] == true, "{a}");
    let (a1, a) = send(&relay, for_site("checkout.session.completed", ANA));
    assert!(filtered_for(&a, "james"), "{a}");
    let (j2, _) = send(&relay, for_site("invoice.paid", JAMES));
    let (_, a) = send(&relay, for_site("invoice.paid", ANA));
    assert_eq!(a["spooled"], false, "no route lets it through: {a}");
    assert!(filtered_for(&a, "ana") && filtered_for(&a, "james"), "{a}");
    let (_, a) = send(&relay, for_site("customer.created", JAMES));
    assert_eq!(a["spooled"], false, "{a}");
    ana.wait_for(std::slice::from_ref(&a1));
    assert_eq!(relay.status()["filtered"], 2);
    assert_eq!(relay.target("ana")["filtered"], 2, "{}", relay.status());
    assert_eq!(relay.target("james")["filtered"], 1);

    // SIGHUP: Ana now takes invoices too.
    write_file(
        d,
        "stripe-ops.toml",
        &config_with("\"checkout.session.*\", \"invoice.*\""),
    );
    relay.signal("HUP");
    poll("ana's new route", WAIT, || {
        relay.target("ana")["route"]["events"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
            .then_some(())
    });
    let (a2, _) = send(&relay, for_site("invoice.paid", ANA));
    ana.wait_for(std::slice::from_ref(&a2));

    // SIGKILL while James's events wait, then a restart: nothing lost, nothing misrouted.
    let (j3, _) = send(&relay, for_site("checkout.session.expired", JAMES));
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1);
    let relay = start(&config);
    let (a3, _) = send(
        &relay,
        for_site("checkout.session.completed", "https://ana2.example"),
    );
    let james = Recorder::start_with(d, "james", None, james_port, &[]);
    let james_got = james.wait_for(&[j1.clone(), j2.clone(), j3.clone()]);
    ana.wait_for(&[a1.clone(), a2.clone(), a3.clone()]);
    relay.wait_spool_empty();
    let ids = |records: &[Value]| -> BTreeSet<String> {
        records
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&james_got), BTreeSet::from([j1, j2, j3]));
    assert_eq!(ids(&ana.received()), BTreeSet::from([a1, a2, a3]));
}
