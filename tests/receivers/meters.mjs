// stripe-node against the sandbox's billing meters, v1 and v2, as an app calls them: meters,
// meter events, their summaries, adjustments, the v2 meter event session and stream, the thin
// events the sandbox reports bad events with (GET /v2/core/events), and Stripe's errors.
// Test fixture of stripe-ops.
//
//   node meters.mjs API_BASE KEY
//
// Prints {name: {ok, value} | {ok: false, class, type, code, param, message, status}} as JSON.
import Stripe from 'stripe';

const [base, key] = process.argv.slice(2);
const url = new URL(base);
// With `host` set, stripe-node sends the stream (apiBase meter_events) there too
// (resolveBaseAddress: "can override host globally").
const stripe = new Stripe(key, {host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0});
const out = {};

async function call(name, f) {
  try {
    out[name] = {ok: true, value: await f()};
  } catch (err) {
    out[name] = {
      ok: false, class: err.constructor.name, type: err.type, code: err.code,
      param: err.param, message: err.raw?.message, status: err.statusCode,
    };
  }
}

const minute = (t) => t - (t % 60);
const now = Math.floor(Date.now() / 1000);
const customer = await stripe.customers.create({email: 'metered@example.com'});
out.customer = customer.id;

await call('meter', () => stripe.billing.meters.create({
  display_name: 'API calls', event_name: 'api_call', default_aggregation: {formula: 'sum'},
}));
await call('meter_count', () => stripe.billing.meters.create({
  display_name: 'Logins', event_name: 'login', default_aggregation: {formula: 'count'},
  customer_mapping: {event_payload_key: 'account', type: 'by_id'},
}));
await call('duplicate_event_name', () => stripe.billing.meters.create({
  display_name: 'again', event_name: 'api_call', default_aggregation: {formula: 'sum'},
}));
await call('missing_formula', () => stripe.billing.meters.create({display_name: 'x', event_name: 'x', default_aggregation: {}}));
await call('unknown_parameter', () => stripe.billing.meters.create({
  display_name: 'x', event_name: 'y', default_aggregation: {formula: 'sum'}, bogus: 1,
}));
const meter = out.meter.value;
await call('updated', () => stripe.billing.meters.update(meter.id, {display_name: 'API requests'}));
await call('listed', () => stripe.billing.meters.list({status: 'active'}));

// v1 meter events: two counted, one repeated by identifier (counted once).
await call('event_1', () => stripe.billing.meterEvents.create({
  event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '5'}, identifier: 'evt-one', timestamp: now - 30,
}));
await call('event_2', () => stripe.billing.meterEvents.create({
  event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '7'}, timestamp: now - 20,
}));
await call('event_repeated', () => stripe.billing.meterEvents.create({
  event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '5'}, identifier: 'evt-one', timestamp: now - 30,
}));
await call('event_missing_payload', () => stripe.billing.meterEvents.create({event_name: 'api_call'}));
// Accepted at once, refused by the meter after: thin events.
await call('event_no_customer', () => stripe.billing.meterEvents.create({
  event_name: 'api_call', payload: {value: '1'}, identifier: 'no-customer',
}));
await call('event_bad_value', () => stripe.billing.meterEvents.create({
  event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: 'lots'}, identifier: 'bad-value',
}));
await call('event_no_meter', () => stripe.billing.meterEvents.create({
  event_name: 'nobody_meters_this', payload: {stripe_customer_id: customer.id, value: '1'}, identifier: 'no-meter',
}));
await call('login_events', async () => {
  for (const i of [1, 2, 3]) {
    await stripe.billing.meterEvents.create({event_name: 'login', payload: {account: customer.id}, identifier: `login-${i}`});
  }
});

const window = {customer: customer.id, start_time: minute(now) - 3600, end_time: minute(now) + 120};
await call('summary', () => stripe.billing.meters.listEventSummaries(meter.id, window));
await call('summary_count', () => stripe.billing.meters.listEventSummaries(out.meter_count.value.id, window));
await call('summary_hourly', () => stripe.billing.meters.listEventSummaries(meter.id, {...window, value_grouping_window: 'hour'}));
await call('summary_unaligned', () => stripe.billing.meters.listEventSummaries(meter.id, {...window, start_time: window.start_time + 1}));
await call('summary_missing_customer', () => stripe.billing.meters.listEventSummaries(meter.id, {start_time: window.start_time, end_time: window.end_time}));
await call('summary_no_meter', () => stripe.billing.meters.listEventSummaries('mtr_nope', window));

await call('adjustment', () => stripe.billing.meterEventAdjustments.create({
  event_name: 'api_call', type: 'cancel', cancel: {identifier: 'evt-one'},
}));
await call('summary_adjusted', () => stripe.billing.meters.listEventSummaries(meter.id, window));

// v2: a session, the stream with its token, a v2 meter event, a v2 adjustment.
await call('session', () => stripe.v2.billing.meterEventSession.create());
const session = out.session.value;
const streamer = new Stripe(session.authentication_token, {host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0});
await call('stream', () => streamer.v2.billing.meterEventStream.create({events: [
  {event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '100'}, identifier: 'stream-1', timestamp: new Date((now - 10) * 1000).toISOString()},
  {event_name: 'no_such_meter_stream', payload: {value: '10'}, identifier: 'stream-2'},
]}));
await call('stream_with_key', () => stripe.v2.billing.meterEventStream.create({events: [{event_name: 'api_call', payload: {value: '1'}}]}));
await call('stream_bad_timestamp', () => streamer.v2.billing.meterEventStream.create({events: [
  {event_name: 'api_call', payload: {value: '1'}, timestamp: 'yesterday'},
]}));
await call('v2_event', () => stripe.v2.billing.meterEvents.create({
  event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '1000'}, identifier: 'v2-1',
}));
await call('v2_adjustment', () => stripe.v2.billing.meterEventAdjustments.create({
  event_name: 'api_call', type: 'cancel', cancel: {identifier: 'v2-1'},
}));
await call('v2_missing', () => stripe.v2.billing.meterEvents.create({event_name: 'api_call'}));
await call('summary_after_stream', () => stripe.billing.meters.listEventSummaries(meter.id, window));

await call('deactivated', () => stripe.billing.meters.deactivate(meter.id));
await call('event_inactive', () => stripe.billing.meterEvents.create({
  event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '1'}, identifier: 'inactive',
}));
await call('reactivated', () => stripe.billing.meters.reactivate(meter.id));
await call('listed_inactive', () => stripe.billing.meters.list({status: 'inactive'}));

// The thin events, as the API lists and serves them.
const errorTypes = ['v1.billing.meter.error_report_triggered', 'v1.billing.meter.no_meter_found'];
await call('thin_of_meter', () => stripe.v2.core.events.list({object_id: meter.id, types: errorTypes}));
await call('thin_fetched', async () => {
  const list = await stripe.v2.core.events.list({limit: 20, types: errorTypes});
  return Promise.all(list.data.map((e) => stripe.v2.core.events.retrieve(e.id)));
});
// The meter's own snapshot events have thin twins (`v1.billing.meter.created`, …).
await call('thin_twins', async () => {
  const twins = [];
  for await (const e of stripe.v2.core.events.list({object_id: meter.id, limit: 2})) {
    if (!errorTypes.includes(e.type)) twins.push(e);
  }
  return twins;
});
await call('snapshot_events', () => stripe.events.list({limit: 100}));
await call('thin_missing', () => stripe.v2.core.events.retrieve('evt_test_nope'));

// The session expires after 15 minutes on the sandbox's clock.
await fetch(`${base}/sandbox/v1/clock/advance`, {
  method: 'POST', headers: {Authorization: `Bearer ${key}`, 'Content-Type': 'application/x-www-form-urlencoded'},
  body: 'by=960',
});
await call('stream_expired', () => streamer.v2.billing.meterEventStream.create({events: [
  {event_name: 'api_call', payload: {stripe_customer_id: customer.id, value: '1'}},
]}));

console.log(JSON.stringify(out));
