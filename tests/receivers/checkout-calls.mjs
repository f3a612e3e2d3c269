// stripe-node against the sandbox's Checkout Sessions in `subscription` mode with one-time
// prices beside the recurring ones (on the first invoice only), as an app makes them; and
// `add_invoice_items` on a subscription; a payment-mode cart priced inline (`price_data`). Test
// fixture of stripe-ops.
//
//   node checkout-calls.mjs API_BASE KEY
//
// Prints {results: {name: {ok, value | code, param, message}}, typed: [{name, ts, body}]}:
// `typed` holds the answers to compile as their stripe-node type.
import Stripe from 'stripe';

const [base, key] = process.argv.slice(2);
const url = new URL(base);
const stripe = new Stripe(key, {host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0});
const results = {};
const typed = [];
const keep = (name, ts, body) => {
  typed.push({name, ts, body: JSON.stringify(body)});
  return body;
};

async function call(name, f) {
  try {
    results[name] = {ok: true, value: await f()};
  } catch (err) {
    results[name] = {ok: false, class: err.constructor.name, code: err.code, param: err.param, message: err.raw?.message,
      status: err.statusCode};
  }
}

// The Stripe CLI's fixtures and Stripe.js pay a session through the payment page's confirm.
const payPage = (cs, pm) => stripe.rawRequest('POST', `/v1/payment_pages/${cs.id}/confirm`,
  {payment_method: pm, expected_amount: cs.amount_total});

const prices = async (name) => ({
  plan: await stripe.prices.create({unit_amount: 900, currency: 'usd', recurring: {interval: 'month'}, product_data: {name}}),
  fee: await stripe.prices.create({unit_amount: 2500, currency: 'usd', product_data: {name: `${name} setup`}}),
});

// The event types since `after` (an event id or null), oldest first.
async function eventsSince(after) {
  const page = await stripe.events.list({limit: 100});
  keep('events', 'ApiList<Stripe.Event>', page);
  const types = [];
  for (const e of page.data) {
    if (e.id === after) break;
    types.push(e.type);
  }
  return types.reverse();
}

const lastEvent = async () => (await stripe.events.list({limit: 1})).data[0]?.id ?? null;

const invoiceView = (invoice) => ({
  status: invoice.status, billing_reason: invoice.billing_reason, amount_due: invoice.amount_due,
  amount_paid: invoice.amount_paid, subtotal: invoice.subtotal, total: invoice.total,
  lines: invoice.lines.data.map((l) => ({amount: l.amount, description: l.description, parent: l.parent.type,
    price: l.pricing?.price_details?.price, quantity: l.quantity,
    invoice_item: l.parent.invoice_item_details?.invoice_item ?? null,
    subscription: l.subscription})),
});

await call('one_time_beside_subscription', async () => {
  const {plan, fee} = await prices('Pro');
  const cs = keep('session', 'Checkout.Session', await stripe.checkout.sessions.create({mode: 'subscription',
    line_items: [{price: plan.id, quantity: 1}, {price: fee.id, quantity: 2}],
    customer_email: 'onetime@example.com', success_url: 'https://example.com/ok'}));
  const before = await lastEvent();
  await payPage(cs, 'pm_card_visa');
  const events = await eventsSince(before);
  const done = keep('session paid', 'Checkout.Session', await stripe.checkout.sessions.retrieve(cs.id, {expand: ['subscription']}));
  const invoice = keep('invoice', 'Invoice', await stripe.invoices.retrieve(done.invoice));
  const items = keep('invoice items', 'ApiList<Stripe.InvoiceItem>', await stripe.invoiceItems.list({customer: done.customer}));
  return {amount_subtotal: cs.amount_subtotal, amount_total: cs.amount_total, payment_status: done.payment_status,
    sub: done.subscription.status, sub_prices: done.subscription.items.data.map((i) => i.price.id === plan.id),
    invoice: invoiceView(invoice), plan: plan.id, fee: fee.id, subscription: done.subscription.id,
    items: items.data.map((i) => ({amount: i.amount, quantity: i.quantity, on_first: i.invoice === invoice.id,
      subscription: i.parent?.subscription_details?.subscription === done.subscription.id})),
    line_items_match: invoice.lines.data.filter((l) => l.parent.type === 'invoice_item_details')
      .every((l) => items.data.some((i) => i.id === l.parent.invoice_item_details.invoice_item)),
    events};
});
await call('one_time_beside_trial', async () => {
  const {plan, fee} = await prices('Trial');
  const cs = await stripe.checkout.sessions.create({mode: 'subscription',
    line_items: [{price: plan.id, quantity: 1}, {price: fee.id, quantity: 1}],
    customer_email: 'trial-onetime@example.com', success_url: 'https://example.com/ok', subscription_data: {trial_period_days: 7}});
  await payPage(cs, 'pm_card_visa');
  const done = await stripe.checkout.sessions.retrieve(cs.id, {expand: ['subscription', 'invoice']});
  return {amount_total: cs.amount_total, payment_status: done.payment_status, sub: done.subscription.status,
    invoice: invoiceView(done.invoice)};
});
await call('only_one_time_in_subscription_mode', async () => {
  const {fee} = await prices('Lonely');
  return stripe.checkout.sessions.create({mode: 'subscription', line_items: [{price: fee.id, quantity: 1}],
    success_url: 'https://example.com/ok'});
});
await call('recurring_in_add_invoice_items', async () => {
  const {plan} = await prices('Twice');
  const customer = await stripe.customers.create({});
  return stripe.subscriptions.create({customer: customer.id, items: [{price: plan.id}], add_invoice_items: [{price: plan.id}]});
});
// An app's cart priced inline (`price_data` with `product_data`): the session's price and product
// are made with it, and the page's payment pays the sum.
await call('price_data_in_payment_mode', async () => {
  const cs = keep('inline session', 'Checkout.Session', await stripe.checkout.sessions.create({mode: 'payment',
    line_items: [
      {price_data: {currency: 'eur', unit_amount: 1250, product_data: {name: 'Mug', metadata: {sku: 'mug-1'}}}, quantity: 2},
      {price_data: {currency: 'eur', unit_amount: 400, product_data: {name: 'Card'}}, quantity: 1},
    ],
    success_url: 'https://example.com/ok'}));
  await payPage(cs, 'pm_card_visa');
  const done = keep('inline session paid', 'Checkout.Session', await stripe.checkout.sessions.retrieve(cs.id, {expand: ['payment_intent']}));
  return {amount_total: cs.amount_total, currency: cs.currency, status: done.status, payment_status: done.payment_status,
    paid: done.payment_intent.amount_received};
});
await call('neither_price_nor_price_data', async () =>
  stripe.checkout.sessions.create({mode: 'payment', line_items: [{quantity: 1}], success_url: 'https://example.com/ok'}));
console.log(JSON.stringify({results, typed}));
