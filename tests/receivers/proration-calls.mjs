// stripe-node against the sandbox's Stripe API: a subscription SaaS's plan changes on running
// subscriptions, each on its own test clock so the time is exact: an upgrade halfway through a
// month with the default create_prorations (previewed first with invoices.createPreview, then
// picked up by the renewal invoice), always_invoice, none, billing_cycle_anchor=now, and the
// subscription items API. Test fixture of stripe-ops.
//
//   node proration-calls.mjs API_BASE KEY
//
// Prints {results: {name: {ok, value} | {ok: false, class, type, code, param, message, status}},
// typed: [{name, body, ts?}]} as JSON: `value` holds what the test asserts, among them the
// event types each step caused, in order; `typed` every answer (with its stripe-node type) and
// event, for the type oracle (oracle.mjs, oracle.py).
import {calls} from './calls.mjs';

const {stripe, call, keep, step, print} = calls(process.argv.slice(2));

const JAN1 = 1767225600; // 2026-01-01T00:00:00Z
const FEB1 = 1769904000; // a calendar month on: 2,678,400 s
const MID = JAN1 + 1339200; // halfway: 15.5 days in
const HOUR = 3600;

// A customer paying by card on a fresh clock at JAN1, two monthly prices (Basic 10 USD, Pro
// 30 USD), and a subscription to Basic × `quantity`.
async function running(name, quantity = 1) {
  const clock = await stripe.testHelpers.testClocks.create({frozen_time: JAN1, name});
  const customer = await stripe.customers.create({test_clock: clock.id, payment_method: 'pm_card_visa',
    invoice_settings: {default_payment_method: 'pm_card_visa'}});
  const basic = await stripe.prices.create({unit_amount: 1000, currency: 'usd', recurring: {interval: 'month'},
    product_data: {name: 'Basic'}});
  const pro = await stripe.prices.create({unit_amount: 3000, currency: 'usd', recurring: {interval: 'month'},
    product_data: {name: 'Pro'}});
  const sub = keep(`${name} subscription`, 'Subscription',
    await stripe.subscriptions.create({customer: customer.id, items: [{price: basic.id, quantity}]}));
  const advance = (to) => stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: to});
  return {clock, customer, basic, pro, sub, item: sub.items.data[0], advance};
}

const lines = (invoice) => invoice.lines.data.map((l) => ({
  amount: l.amount, description: l.description, period: [l.period.start, l.period.end],
  proration: l.parent.subscription_item_details?.proration ?? null,
  invoice_item: l.parent.subscription_item_details?.invoice_item?.startsWith('ii_') ?? false,
  credited: l.parent.subscription_item_details?.proration_details?.credited_items?.invoice_line_items?.length ?? null,
}));
const itemsOf = async (customer) => (await stripe.invoiceItems.list({customer: customer.id})).data.reverse()
  .map((ii) => {
    keep('proration invoice item', 'InvoiceItem', ii);
    return {amount: ii.amount, proration: ii.proration, discountable: ii.discountable, description: ii.description,
      period: [ii.period.start, ii.period.end], parent: [ii.parent.type, ii.parent.subscription_details.subscription_item],
      price: ii.pricing?.price_details?.price ?? null, unit: String(ii.pricing?.unit_amount_decimal), invoiced: ii.invoice !== null, credited: ii.proration_details?.credited_items?.type ?? null};
  });

// Upgrade Basic → Pro halfway through January: previewed, then made (create_prorations), then
// the February renewal takes the prorations.
await call('upgrade', async () => {
  const {customer, basic, pro, sub, item, advance} = await running('upgrade');
  await advance(MID);
  const previewed = await step(() => stripe.invoices.createPreview({customer: customer.id, subscription: sub.id,
    subscription_details: {items: [{id: item.id, price: pro.id}], proration_date: MID}}));
  const preview = keep('preview', 'Invoice', previewed.value);
  const now = keep('preview now', 'Invoice', await stripe.invoices.createPreview({subscription: sub.id,
    subscription_details: {items: [{id: item.id, price: pro.id}], proration_behavior: 'always_invoice'}}));
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, price: pro.id}]}));
  keep('upgraded', 'Subscription', updated.value);
  const subEvent = updated.made.find((e) => e.type === 'customer.subscription.updated');
  const pending = await itemsOf(customer);
  const renewed = await step(() => advance(FEB1 + 2 * HOUR));
  const after = await stripe.subscriptions.retrieve(sub.id);
  const renewal = keep('renewal', 'Invoice', await stripe.invoices.retrieve(after.latest_invoice));
  return {
    preview: {id: preview.id.startsWith('upcoming_in'), reason: preview.billing_reason, created: preview.created,
      proration_date: preview.parent.subscription_details.subscription_proration_date,
      amount_due: preview.amount_due, lines: lines(preview), events: previewed.events.length,
      listed: (await stripe.invoices.list({customer: customer.id})).data.some((i) => i.id === preview.id)},
    preview_now: {reason: now.billing_reason, created: now.created, amount_due: now.amount_due, lines: lines(now).map((l) => l.amount),
      customer: now.customer === customer.id},
    update: {events: updated.events, item: [updated.value.items.data[0].id === item.id, updated.value.items.data[0].price.id === pro.id],
      period: [updated.value.items.data[0].current_period_start, updated.value.items.data[0].current_period_end],
      previous_price: subEvent?.data.previous_attributes?.items?.data?.[0]?.price?.id === basic.id},
    pending,
    renewal: {reason: renewal.billing_reason, status: renewal.status, amount_due: renewal.amount_due, amount_paid: renewal.amount_paid,
      lines: lines(renewal), events: renewed.events},
    invoiced: (await itemsOf(customer)).map((i) => i.invoiced),
  };
});

// always_invoice: a quantity change halfway is invoiced and charged at once.
await call('always_invoice', async () => {
  const {customer, sub, item, advance} = await running('always');
  await advance(MID);
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, quantity: 2}],
    proration_behavior: 'always_invoice'}));
  const invoice = keep('proration invoice', 'Invoice', await stripe.invoices.retrieve(updated.value.latest_invoice));
  return {events: updated.events, latest: invoice.id !== sub.latest_invoice, reason: invoice.billing_reason,
    status: invoice.status, amount_paid: invoice.amount_paid, lines: lines(invoice),
    pending: (await itemsOf(customer)).filter((i) => !i.invoiced).length};
});

// always_invoice with a card that now declines (4000 0000 0000 0341 attaches, then fails):
// the update succeeds, its invoice stays open and the subscription is past_due.
await call('always_invoice_declined', async () => {
  const {customer, sub, item, advance} = await running('declined');
  const failing = await stripe.paymentMethods.attach('pm_card_chargeCustomerFail', {customer: customer.id});
  await stripe.customers.update(customer.id, {invoice_settings: {default_payment_method: failing.id}});
  await advance(MID);
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, quantity: 2}],
    proration_behavior: 'always_invoice'}));
  const invoice = await stripe.invoices.retrieve(updated.value.latest_invoice);
  return {status: updated.value.status, invoice: [invoice.status, invoice.amount_due, invoice.attempt_count],
    events: updated.events.filter((t) => t.startsWith('invoice') || t.startsWith('customer.subscription'))};
});

// A downgrade (Pro to Basic) invoiced at once: its total is a credit, nothing is due or charged.
await call('downgrade', async () => {
  const {basic, pro, sub, item, advance} = await running('downgrade');
  await stripe.subscriptions.update(sub.id, {items: [{id: item.id, price: pro.id}], proration_behavior: 'none'});
  await advance(MID);
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, price: basic.id}],
    proration_behavior: 'always_invoice'}));
  const invoice = keep('downgrade invoice', 'Invoice', await stripe.invoices.retrieve(updated.value.latest_invoice));
  return {events: updated.events, invoice: [invoice.status, invoice.total, invoice.amount_due, invoice.amount_paid],
    lines: lines(invoice).map((l) => [l.amount, l.description])};
});

// Canceled halfway with prorate and invoice_now: a final invoice crediting the unused half.
await call('cancel_prorated', async () => {
  const {sub, advance} = await running('cancel');
  await advance(MID);
  const canceled = await step(() => stripe.subscriptions.cancel(sub.id, {prorate: true, invoice_now: true}));
  keep('canceled', 'Subscription', canceled.value);
  const invoice = keep('final invoice', 'Invoice', await stripe.invoices.retrieve(canceled.value.latest_invoice));
  return {status: canceled.value.status, events: canceled.events,
    invoice: [invoice.billing_reason, invoice.status, invoice.total, invoice.amount_due], lines: lines(invoice).map((l) => l.amount)};
});

// none: the price changes, nothing is prorated; the renewal bills the new price.
await call('none', async () => {
  const {customer, pro, sub, item, advance} = await running('none');
  await advance(MID);
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, price: pro.id}],
    proration_behavior: 'none'}));
  await advance(FEB1 + 2 * HOUR);
  const renewal = await stripe.invoices.retrieve((await stripe.subscriptions.retrieve(sub.id)).latest_invoice);
  return {events: updated.events, items: (await itemsOf(customer)).length, renewal: [renewal.amount_paid, lines(renewal).length]};
});

// billing_cycle_anchor=now: the period restarts now and is invoiced at once, with the credit
// for the old price's unused time.
await call('anchor_now', async () => {
  const {pro, sub, item, advance} = await running('anchor');
  await advance(MID);
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, price: pro.id}],
    billing_cycle_anchor: {type: 'now'}}));
  const invoice = keep('anchor invoice', 'Invoice', await stripe.invoices.retrieve(updated.value.latest_invoice));
  const si = updated.value.items.data[0];
  return {events: updated.events, anchor: updated.value.billing_cycle_anchor, period: [si.current_period_start, si.current_period_end],
    invoice: [invoice.billing_reason, invoice.status, invoice.amount_paid], lines: lines(invoice)};
});

// Monthly to yearly halfway: a price of another interval starts a new period now, invoiced at once.
await call('interval_change', async () => {
  const {sub, item, advance} = await running('yearly');
  const yearly = await stripe.prices.create({unit_amount: 10000, currency: 'usd', recurring: {interval: 'year'},
    product_data: {name: 'Annual'}});
  await advance(MID);
  const updated = await step(() => stripe.subscriptions.update(sub.id, {items: [{id: item.id, price: yearly.id}]}));
  const invoice = await stripe.invoices.retrieve(updated.value.latest_invoice);
  const si = updated.value.items.data[0];
  return {period: [si.current_period_start, si.current_period_end], invoice: [invoice.billing_reason, invoice.status, invoice.amount_paid],
    lines: lines(invoice).map((l) => l.amount)};
});

// The subscription items API: an add-on added halfway (prorated), listed, its quantity
// changed without proration, removed (credited); the preview shows what the renewal bills.
await call('items_api', async () => {
  const {customer, sub, advance} = await running('items');
  const addon = await stripe.prices.create({unit_amount: 400, currency: 'usd', recurring: {interval: 'month'},
    product_data: {name: 'Add-on'}});
  await advance(MID);
  const added = await step(() => stripe.subscriptionItems.create({subscription: sub.id, price: addon.id}));
  keep('added item', 'SubscriptionItem', added.value);
  const listed = await stripe.subscriptionItems.list({subscription: sub.id});
  const changed = await step(() => stripe.subscriptionItems.update(added.value.id, {quantity: 3, proration_behavior: 'none'}));
  keep('changed item', 'SubscriptionItem', changed.value);
  const retrieved = keep('retrieved item', 'SubscriptionItem', await stripe.subscriptionItems.retrieve(added.value.id));
  await advance(MID + 86400);
  const removed = await step(() => stripe.subscriptionItems.del(added.value.id));
  keep('removed item', 'DeletedSubscriptionItem', removed.value);
  const setup = keep('one-off item', 'InvoiceItem', await stripe.invoiceItems.create({customer: customer.id, subscription: sub.id,
    amount: 700, currency: 'usd', description: 'Setup'}));
  const preview = keep('items preview', 'Invoice', await stripe.invoices.createPreview({customer: customer.id, subscription: sub.id}));
  return {
    added: {price: added.value.price.id === addon.id, period: [added.value.current_period_start, added.value.current_period_end],
      events: added.events},
    listed: listed.data.length,
    changed: {quantity: changed.value.quantity, retrieved: retrieved.quantity, events: changed.events},
    removed: {deleted: removed.value.deleted, events: removed.events},
    pending: (await itemsOf(customer)).map((i) => [i.amount, i.credited]),
    setup: [setup.parent.type, setup.parent.subscription_details.subscription === sub.id],
    preview: {amount_due: preview.amount_due, lines: lines(preview).map((l) => l.amount),
      setup: preview.lines.data.filter((l) => l.parent.type === 'invoice_item_details')
        .map((l) => [l.parent.invoice_item_details.invoice_item === setup.id, l.parent.invoice_item_details.subscription === sub.id])},
  };
});

// A schedule whose second phase (two seats) starts halfway through the month: the change is
// prorated per the phase's proration_behavior, as an update would be.
await call('schedule_phase', async () => {
  const clock = await stripe.testHelpers.testClocks.create({frozen_time: JAN1, name: 'phase'});
  const customer = await stripe.customers.create({test_clock: clock.id, payment_method: 'pm_card_visa',
    invoice_settings: {default_payment_method: 'pm_card_visa'}});
  const basic = await stripe.prices.create({unit_amount: 1000, currency: 'usd', recurring: {interval: 'month'},
    product_data: {name: 'Basic'}});
  const s = await stripe.subscriptionSchedules.create({customer: customer.id, start_date: 'now', phases: [
    {items: [{price: basic.id, quantity: 1}], end_date: MID},
    {items: [{price: basic.id, quantity: 2}], duration: {interval: 'month'}, proration_behavior: 'create_prorations'}]});
  const moved = await step(() => stripe.testHelpers.testClocks.advance(clock.id, {frozen_time: MID + HOUR}));
  const sub = await stripe.subscriptions.retrieve(s.subscription);
  return {quantity: sub.items.data[0].quantity, events: moved.events,
    pending: (await itemsOf(customer)).map((i) => [i.amount, i.description, i.period])};
});

// subscriptions.list: without status the canceled ones are left out; all, canceled, ended and
// a price filter as stripe-node's SubscriptionListParams describe them; list filters a create
// also reads (invoices by customer, prices by product and recurring interval) filter.
await call('list_status', async () => {
  const {customer, basic, pro, sub} = await running('listing');
  const second = await stripe.subscriptions.create({customer: customer.id, items: [{price: pro.id}]});
  await stripe.subscriptions.cancel(sub.id);
  const ids = async (params) => (await stripe.subscriptions.list({customer: customer.id, ...params})).data
    .map((s) => (s.id === sub.id ? 'canceled' : s.id === second.id ? 'active' : s.id)).sort();
  return {default: await ids({}), all: await ids({status: 'all'}), canceled: await ids({status: 'canceled'}),
    ended: await ids({status: 'ended'}), active: await ids({status: 'active'}), pro: await ids({price: pro.id}),
    basic_all: await ids({price: basic.id, status: 'all'}),
    invoices: (await stripe.invoices.list({customer: customer.id})).data.length,
    prices: (await stripe.prices.list({product: pro.product, recurring: {interval: 'month'}})).data.map((p) => p.id === pro.id),
    yearly: (await stripe.prices.list({product: pro.product, recurring: {interval: 'year'}})).data.length};
});

await call('unknown_item', async () => {
  const {sub} = await running('unknown');
  return stripe.subscriptions.update(sub.id, {items: [{id: 'si_doesnotexist', quantity: 2}]});
});
await call('no_upcoming', async () => stripe.invoices.createPreview({customer: (await stripe.customers.create({})).id}));
await call('items_list_without_subscription', async () => stripe.subscriptionItems.list());

print();
