// stripe-node against the sandbox's Stripe API, as an app calls it: the 4xx answers it turns
// into its typed errors, and the calls apps make beside the CLI's (lists, expand, idempotent
// retries). Test fixture of stripe-ops.
//
//   node sdk-calls.mjs API_BASE KEY [clock]
//
// With `clock`, only the test clock scenario: a customer on a clock, a subscription with a
// 14-day trial, the clock advanced past trial_will_end, the trial's end and one renewal, then
// cancel_at_period_end and past the period's end; it prints the objects' states and the
// account's events, oldest first ({id, type, created}); then a two-phase schedule on another
// clock (clock_schedule) and a trial without a payment method (clock_unpaid).

// Prints {name: {ok, class, type, code, decline_code, param, message, status, value}} as JSON:
// `class` is the error's class in stripe-node (StripeInvalidRequestError, StripeCardError, ...).
import Stripe from 'stripe';

const [base, key, scenario] = process.argv.slice(2);
const url = new URL(base);
// stripe-node sends its pinned API version (Stripe-Version) with every call.
const stripe = new Stripe(key, {host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0});
const out = {};

async function call(name, f) {
  try {
    out[name] = {ok: true, value: await f()};
  } catch (err) {
    out[name] = {
      ok: false, class: err.constructor.name, type: err.type, code: err.code, decline_code: err.decline_code,
      param: err.param, message: err.raw?.message, status: err.statusCode,
    };
  }
}

if (scenario === 'clock') {
  await clockScenario();
  console.log(JSON.stringify(out));
  process.exit(0);
}

async function clockScenario() {
  const day = 86400;
  const t0 = 1767225600; // 2026-01-01T00:00:00Z
  const clock = await stripe.testHelpers.testClocks.create({frozen_time: t0, name: 'trial to renewal'});
  const customer = await stripe.customers.create({test_clock: clock.id, payment_method: 'pm_card_visa',
    invoice_settings: {default_payment_method: 'pm_card_visa'}});
  const price = await stripe.prices.create({unit_amount: 1000, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Clocked'}});
  const sub = await stripe.subscriptions.create({customer: customer.id, items: [{price: price.id}], trial_period_days: 14});
  const advance = async (to) => {
    await stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: to});
    return stripe.subscriptions.retrieve(sub.id);
  };
  const noticed = await advance(t0 + 12 * day);
  const trialEnded = await advance(t0 + 14 * day + 2 * 3600);
  const firstPaid = await stripe.invoices.retrieve(trialEnded.latest_invoice);
  const feb15 = 1771113600; // 2026-02-15T00:00:00Z, a calendar month after the trial's end
  const renewed = await advance(feb15 + 2 * 3600);
  const renewal = await stripe.invoices.retrieve(renewed.latest_invoice);
  await stripe.subscriptions.update(sub.id, {cancel_at_period_end: true});
  const mar15 = 1773532800; // 2026-03-15T00:00:00Z
  const ended = await advance(mar15 + 60);
  // A fresh sandbox: the account's events are this scenario's.
  const events = (await stripe.events.list({limit: 100})).data.map((e) => ({id: e.id, type: e.type, created: e.created})).reverse();
  const item = (s) => [s.items.data[0].current_period_start, s.items.data[0].current_period_end];
  out.clock = {ok: true, value: {
    customer: {created: customer.created, test_clock: customer.test_clock === clock.id},
    created: {status: sub.status, created: sub.created, trial_end: sub.trial_end, test_clock: sub.test_clock === clock.id, period: item(sub)},
    noticed: noticed.status,
    trial_ended: {status: trialEnded.status, period: item(trialEnded), invoice: [firstPaid.status, firstPaid.billing_reason, firstPaid.amount_paid,
      firstPaid.created, firstPaid.test_clock === clock.id]},
    renewed: {status: renewed.status, period: item(renewed), invoice: [renewal.status, renewal.billing_reason, renewal.amount_paid, renewal.created,
      renewal.lines.data[0].period]},
    ended: {status: ended.status, ended_at: ended.ended_at},
    clock: (await stripe.testHelpers.testClocks.retrieve(clock.id)).frozen_time,
    events,
  }};
  await clockSchedule();
  await clockWithoutPaymentMethod();
}

// A trial without a payment method (trial_settings' default, create_invoice): at its end the
// first paid invoice is made and, an hour later, its payment attempt fails; the subscription is
// past_due. Its events are those after the schedule's.
async function clockWithoutPaymentMethod() {
  const jan1 = 1767225600;
  const mark = (await stripe.events.list({limit: 1})).data[0].id;
  const clock = await stripe.testHelpers.testClocks.create({frozen_time: jan1});
  const customer = await stripe.customers.create({test_clock: clock.id});
  const price = await stripe.prices.create({unit_amount: 800, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Unpaid'}});
  const sub = await stripe.subscriptions.create({customer: customer.id, items: [{price: price.id}], trial_period_days: 7});
  await stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: jan1 + 7 * 86400 + 2 * 3600});
  const after = await stripe.subscriptions.retrieve(sub.id, {expand: ['latest_invoice']});
  const all = (await stripe.events.list({limit: 100})).data;
  const events = all.slice(0, all.findIndex((e) => e.id === mark)).reverse().map((e) => e.type);
  out.clock_unpaid = {ok: true, value: {status: after.status, invoice: [after.latest_invoice.status, after.latest_invoice.attempt_count,
    after.latest_invoice.amount_due], events}};
}

// A two-phase schedule on a clock with end_behavior=cancel: the second phase's quantity at the
// first's end, expiring a week before the end, then the subscription canceled and the schedule
// completed. Its events are those after the first scenario's.
async function clockSchedule() {
  const [jan1, feb1, mar1] = [1767225600, 1769904000, 1772323200];
  const mark = (await stripe.events.list({limit: 1})).data[0].id;
  const clock = await stripe.testHelpers.testClocks.create({frozen_time: jan1});
  const customer = await stripe.customers.create({test_clock: clock.id, payment_method: 'pm_card_visa',
    invoice_settings: {default_payment_method: 'pm_card_visa'}});
  const price = await stripe.prices.create({unit_amount: 500, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Phased'}});
  const month = {interval: 'month', interval_count: 1};
  const s = await stripe.subscriptionSchedules.create({customer: customer.id, start_date: 'now', end_behavior: 'cancel',
    phases: [{items: [{price: price.id, quantity: 1}], duration: month}, {items: [{price: price.id, quantity: 2}], duration: month}]});
  await stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: feb1 + 7200});
  const second = await stripe.subscriptionSchedules.retrieve(s.id);
  const sub = await stripe.subscriptions.retrieve(s.subscription);
  const invoice = await stripe.invoices.retrieve(sub.latest_invoice);
  await stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: mar1 + 3600});
  const done = await stripe.subscriptionSchedules.retrieve(s.id);
  const ended = await stripe.subscriptions.retrieve(s.subscription);
  const all = (await stripe.events.list({limit: 100})).data;
  const events = all.slice(0, all.findIndex((e) => e.id === mark)).reverse().map((e) => ({type: e.type, created: e.created}));
  out.clock_schedule = {ok: true, value: {
    created: {status: s.status, created: s.created, test_clock: s.test_clock === clock.id, current: [s.current_phase.start_date, s.current_phase.end_date]},
    second: {status: second.status, current: [second.current_phase.start_date, second.current_phase.end_date],
      quantity: sub.items.data[0].quantity, period: [sub.items.data[0].current_period_start, sub.items.data[0].current_period_end],
      invoice: [invoice.status, invoice.amount_paid]},
    done: {status: done.status, completed_at: done.completed_at, current_phase: done.current_phase, sub: ended.status, ended_at: ended.ended_at},
    events,
  }};
}

await call('unknown_parameter', () => stripe.coupons.create({percent_off: 10, bogus: 'x'}));
await call('missing_required', () => stripe.prices.create({unit_amount: 100, product_data: {name: 'p'}}));
await call('resource_missing', () => stripe.customers.retrieve('cus_doesnotexist'));
await call('resource_missing_param', () => stripe.subscriptions.create({customer: 'cus_nope', items: [{price: 'price_nope'}]}));
await call('removed_at_this_version', () =>
  stripe.paymentIntents.create({amount: 100, currency: 'usd', payment_method_types: ['card']}));
await call('declined', () => stripe.paymentIntents.create({
  amount: 100, currency: 'usd', payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds', confirm: true,
}));
const paid = await stripe.paymentIntents.create({amount: 500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true});
await call('capture_succeeded', () => stripe.paymentIntents.capture(paid.id));
await call('expanded', async () => {
  const customer = await stripe.customers.create({email: 'a@example.com'});
  const pi = await stripe.paymentIntents.create({amount: 100, currency: 'usd', customer: customer.id});
  const got = await stripe.paymentIntents.retrieve(pi.id, {expand: ['customer']});
  return got.customer.email;
});
await call('three_d_secure', async () => {
  const pi = await stripe.paymentIntents.create({amount: 100, currency: 'usd', payment_method: 'pm_card_authenticationRequired', confirm: true});
  return [pi.status, pi.next_action.type];
});
await call('pay_void_invoice', async () => {
  const customer = await stripe.customers.create({});
  await stripe.invoiceItems.create({customer: customer.id, amount: 300, currency: 'usd'});
  const invoice = await stripe.invoices.create({customer: customer.id, pending_invoice_items_behavior: 'include'});
  await stripe.invoices.finalizeInvoice(invoice.id);
  await stripe.invoices.voidInvoice(invoice.id);
  return stripe.invoices.pay(invoice.id, {payment_method: 'pm_card_visa'});
});
await call('clock_backwards', async () => {
  const clock = await stripe.testHelpers.testClocks.create({frozen_time: 1893456000});
  return stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: 1893455000});
});
await call('idempotent_replay', async () => {
  const a = await stripe.customers.create({email: 'same@example.com'}, {idempotencyKey: 'replay-1'});
  const b = await stripe.customers.create({email: 'same@example.com'}, {idempotencyKey: 'replay-1'});
  return a.id === b.id;
});
await call('idempotency_mismatch', () => stripe.customers.create({email: 'other@example.com'}, {idempotencyKey: 'replay-1'}));
await call('list_pages', async () => {
  const seen = [];
  for await (const c of stripe.customers.list({limit: 2})) seen.push(c.id);
  const page = await stripe.customers.list({limit: 2});
  return {count: seen.length, keys: Object.keys(page).sort(), distinct: new Set(seen).size};
});
await call('search', async () => {
  await stripe.customers.create({email: 'searched@example.com', metadata: {plan: 'pro'}});
  const found = await stripe.customers.search({query: "email:'searched@example.com' AND metadata['plan']:'pro'"});
  const none = await stripe.customers.search({query: "email:'nobody@example.com'"});
  return {object: found.object, emails: found.data.map((c) => c.email), none: none.data.length, next_page: found.next_page};
});
await call('search_unsupported_field', () => stripe.customers.search({query: "colour:'blue'"}));
// Checkout's subscription and setup modes, paid as the Stripe CLI's fixtures pay a session
// (the payment page's confirm, a Stripe.js call stripe-node has no method for).
const payPage = (cs, pm) => stripe.rawRequest('POST', `/v1/payment_pages/${cs.id}/confirm`,
  cs.mode === 'setup' ? {payment_method: pm} : {payment_method: pm, expected_amount: cs.amount_total});
await call('checkout_subscription', async () => {
  const price = await stripe.prices.create({unit_amount: 900, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Pro'}});
  const cs = await stripe.checkout.sessions.create({mode: 'subscription', line_items: [{price: price.id, quantity: 1}],
    customer_email: 'sub@example.com', success_url: 'https://example.com/ok', subscription_data: {metadata: {plan: 'pro'}}});
  await payPage(cs, 'pm_card_visa');
  const done = await stripe.checkout.sessions.retrieve(cs.id, {expand: ['subscription', 'customer']});
  return {status: done.status, payment_status: done.payment_status, sub: done.subscription.status,
    metadata: done.subscription.metadata, email: done.customer.email, invoice: (await stripe.invoices.retrieve(done.invoice)).status};
});
await call('checkout_subscription_trial', async () => {
  const price = await stripe.prices.create({unit_amount: 900, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Trial'}});
  const customer = await stripe.customers.create({email: 'trial@example.com'});
  const cs = await stripe.checkout.sessions.create({mode: 'subscription', line_items: [{price: price.id, quantity: 1}],
    customer: customer.id, success_url: 'https://example.com/ok', subscription_data: {trial_period_days: 14}});
  await payPage(cs, 'pm_card_visa');
  const done = await stripe.checkout.sessions.retrieve(cs.id, {expand: ['subscription']});
  return {amount_total: cs.amount_total, payment_status: done.payment_status, sub: done.subscription.status,
    customer: done.customer === customer.id};
});
await call('checkout_setup', async () => {
  const customer = await stripe.customers.create({email: 'setup@example.com'});
  const cs = await stripe.checkout.sessions.create({mode: 'setup', currency: 'usd', customer: customer.id, success_url: 'https://example.com/ok'});
  await payPage(cs, 'pm_card_visa');
  const done = await stripe.checkout.sessions.retrieve(cs.id, {expand: ['setup_intent']});
  const methods = await stripe.customers.listPaymentMethods(customer.id);
  return {status: done.status, payment_status: done.payment_status, si: done.setup_intent.status,
    attached: methods.data.map((m) => m.id).includes(done.setup_intent.payment_method)};
});
await call('checkout_setup_declined', async () => {
  const cs = await stripe.checkout.sessions.create({mode: 'setup', currency: 'usd', success_url: 'https://example.com/ok'});
  try {
    await payPage(cs, 'pm_card_chargeDeclined');
  } catch (err) {
    return {type: err.type, code: err.code, open: (await stripe.checkout.sessions.retrieve(cs.id)).status};
  }
  return 'paid';
});
await call('checkout_recurring_in_payment_mode', async () => {
  const price = await stripe.prices.create({unit_amount: 900, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'R'}});
  return stripe.checkout.sessions.create({mode: 'payment', line_items: [{price: price.id, quantity: 1}], success_url: 'https://example.com/ok'});
});
// Subscription schedules at stripe-node's version: `duration` (not the removed `iterations`),
// release keeping the subscription, and a released schedule's refusal.
await call('schedule', async () => {
  const price = await stripe.prices.create({unit_amount: 1200, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Plan'}});
  const customer = await stripe.customers.create({email: 'schedule@example.com', payment_method: 'pm_card_visa',
    invoice_settings: {default_payment_method: 'pm_card_visa'}});
  const s = await stripe.subscriptionSchedules.create({customer: customer.id, start_date: 'now',
    phases: [{items: [{price: price.id, quantity: 1}], duration: {interval: 'month', interval_count: 2}},
      {items: [{price: price.id, quantity: 3}], duration: {interval: 'month', interval_count: 1}}]});
  const sub = await stripe.subscriptions.retrieve(s.subscription);
  const released = await stripe.subscriptionSchedules.release(s.id);
  const kept = await stripe.subscriptions.retrieve(s.subscription);
  return {status: s.status, phases: s.phases.length, chained: s.phases[1].start_date === s.phases[0].end_date,
    current: s.current_phase.end_date === s.phases[0].end_date, sub: sub.status, schedule: sub.schedule === s.id,
    released: released.status, released_subscription: released.released_subscription === s.subscription,
    kept: kept.status, unscheduled: kept.schedule};
});
await call('schedule_iterations_removed', async () => {
  const price = await stripe.prices.create({unit_amount: 1200, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Old'}});
  const customer = await stripe.customers.create({});
  return stripe.subscriptionSchedules.create({customer: customer.id, start_date: 'now', phases: [{items: [{price: price.id}], iterations: 2}]});
});
await call('schedule_cancel_twice', async () => {
  const price = await stripe.prices.create({unit_amount: 1200, currency: 'usd', recurring: {interval: 'month'}, product_data: {name: 'Later'}});
  const customer = await stripe.customers.create({});
  const s = await stripe.subscriptionSchedules.create({customer: customer.id, start_date: Math.floor(Date.now() / 1000) + 86400,
    phases: [{items: [{price: price.id}]}]});
  if (s.status !== 'not_started' || s.subscription !== null) return s;
  await stripe.subscriptionSchedules.cancel(s.id);
  return stripe.subscriptionSchedules.cancel(s.id);
});
// A schedule made from a running subscription: one phase over its current period, with its items.
const runningSubscription = async (name, quantity) => {
  const price = await stripe.prices.create({unit_amount: 700, currency: 'usd', recurring: {interval: 'month'}, product_data: {name}});
  const customer = await stripe.customers.create({payment_method: 'pm_card_visa', invoice_settings: {default_payment_method: 'pm_card_visa'}});
  const sub = await stripe.subscriptions.create({customer: customer.id, items: [{price: price.id, quantity}]});
  return {price, customer, sub};
};
await call('schedule_from_subscription', async () => {
  const {price, customer, sub} = await runningSubscription('Running', 3);
  const s = await stripe.subscriptionSchedules.create({from_subscription: sub.id});
  const managed = await stripe.subscriptions.retrieve(sub.id);
  const item = sub.items.data[0];
  const phase = s.phases[0];
  return {status: s.status, customer: s.customer === customer.id, subscription: s.subscription === sub.id, phases: s.phases.length,
    span: phase.start_date === item.current_period_start && phase.end_date === item.current_period_end,
    items: phase.items.map((i) => [i.price === price.id, i.quantity]), end_behavior: s.end_behavior, managed: managed.schedule === s.id};
});
await call('schedule_from_subscription_with_phases', async () => {
  const {price, sub} = await runningSubscription('Twice', 1);
  return stripe.subscriptionSchedules.create({from_subscription: sub.id, phases: [{items: [{price: price.id}]}]});
});
await call('schedule_from_scheduled_subscription', async () => {
  const {sub} = await runningSubscription('Again', 1);
  await stripe.subscriptionSchedules.create({from_subscription: sub.id});
  return stripe.subscriptionSchedules.create({from_subscription: sub.id});
});
// Deleting a customer cancels its subscriptions at once (API reference, Delete a customer).
await call('delete_customer_with_subscription', async () => {
  const {customer, sub} = await runningSubscription('Gone', 1);
  const deleted = await stripe.customers.del(customer.id);
  const after = await stripe.subscriptions.retrieve(sub.id);
  return {deleted: deleted.deleted, status: after.status, ended: after.ended_at !== null};
});
console.log(JSON.stringify(out));
