// stripe-node against the sandbox's Stripe API: a PaymentIntent paid from the customer's cash
// balance (funded partly, then fully, by the test helper), and Issuing's legacy test
// authorization endpoint the Stripe CLI's fixtures call, with their failures. Test fixture of
// stripe-ops.
//
//   node balance-calls.mjs API_BASE KEY
//
// Prints {results: {name: {ok, value} | {ok: false, class, type, code, param, message, status}},
// typed: [{name, body, ts?}]} as JSON: `value` holds what the test asserts, among them the
// event types each step caused, in order; `typed` every answer (with its stripe-node type) and
// event, for the type oracle (oracle.mjs, oracle.py).
import {calls} from './calls.mjs';

const {stripe, call, keep, step, print} = calls(process.argv.slice(2));

const fund = (customer, amount, currency) =>
  stripe.testHelpers.customers.fundCashBalance(customer, {amount, currency});
const cashIntent = (customer, type) => ({
  amount: 20000, currency: 'jpy', customer, allowed_payment_method_types: ['customer_balance'],
  payment_method_data: {type: 'customer_balance'},
  payment_method_options: {customer_balance: {funding_type: 'bank_transfer', bank_transfer: {type}}},
  confirm: true,
});

// A jpy intent funded in two transfers: 8,000 then 15,000 (3,000 left over on the balance).
await call('cash_balance_payment', async () => {
  const customer = keep('customer', 'Customer', await stripe.customers.create({email: 'cash@example.com'}));
  const created = await step(async () => keep('intent', 'PaymentIntent',
    await stripe.paymentIntents.create(cashIntent(customer.id, 'jp_bank_transfer'))));
  const pi = created.value;
  const partly = await step(async () => keep('funded', 'CustomerCashBalanceTransaction', await fund(customer.id, 8000, 'jpy')));
  const waiting = keep('partly funded', 'PaymentIntent', await stripe.paymentIntents.retrieve(pi.id));
  const drained = keep('cash balance', 'CashBalance', await stripe.customers.retrieveCashBalance(customer.id));
  const fully = await step(async () => keep('funded', 'CustomerCashBalanceTransaction', await fund(customer.id, 15000, 'jpy')));
  const paid = keep('paid', 'PaymentIntent', await stripe.paymentIntents.retrieve(pi.id, {expand: ['latest_charge']}));
  const left = keep('cash balance', 'CashBalance', await stripe.customers.retrieveCashBalance(customer.id));
  const expanded = keep('customer with cash_balance', 'Customer', await stripe.customers.retrieve(customer.id, {expand: ['cash_balance']}));
  const txns = keep('transactions', 'ApiList<Stripe.CustomerCashBalanceTransaction>',
    await stripe.customers.listCashBalanceTransactions(customer.id));
  return {
    created: {status: pi.status, next_action: pi.next_action.type, remaining: pi.next_action.display_bank_transfer_instructions.amount_remaining,
      type: pi.next_action.display_bank_transfer_instructions.type, reference: typeof pi.next_action.display_bank_transfer_instructions.reference,
      events: created.events},
    partly: {net: partly.value.net_amount, type: partly.value.type, status: waiting.status,
      remaining: waiting.next_action.display_bank_transfer_instructions.amount_remaining, available: drained.available, events: partly.events},
    fully: {status: paid.status, received: paid.amount_received, next_action: paid.next_action, charge: paid.latest_charge.status,
      charge_amount: paid.latest_charge.amount, charge_method: paid.latest_charge.payment_method_details.type,
      available: left.available, expanded: expanded.cash_balance.available, events: fully.events},
    transactions: txns.data.map((t) => [t.type, t.net_amount, t.ending_balance, t.applied_to_payment?.payment_intent === pi.id]).reverse(),
  };
});
// Reconciliation of new funds among three open intents (5,000, 3,000, 4,000, oldest first):
// the one waiting for exactly the amount sent, then the one whose reference the transfer quotes,
// then the oldest.
await call('cash_balance_reconciliation', async () => {
  const customer = await stripe.customers.create({});
  const open = [];
  for (const amount of [5000, 3000, 4000]) {
    open.push(await stripe.paymentIntents.create({...cashIntent(customer.id, 'jp_bank_transfer'), amount}));
  }
  const state = async () => {
    const got = [];
    for (const pi of open) {
      const now = await stripe.paymentIntents.retrieve(pi.id);
      got.push(now.status === 'succeeded' ? 'paid' : now.next_action.display_bank_transfer_instructions.amount_remaining);
    }
    return got;
  };
  await fund(customer.id, 3000, 'jpy');
  const exact = await state();
  const reference = open[2].next_action.display_bank_transfer_instructions.reference;
  await stripe.testHelpers.customers.fundCashBalance(customer.id, {amount: 1000, currency: 'jpy', reference});
  const quoted = await state();
  await fund(customer.id, 1000, 'jpy');
  return {exact, quoted, oldest: await state()};
});
// Manual reconciliation: funds wait on the balance until applied by hand.
await call('cash_balance_manual', async () => {
  const customer = await stripe.customers.create({cash_balance: {settings: {reconciliation_mode: 'manual'}}});
  const pi = await stripe.paymentIntents.create({...cashIntent(customer.id, 'jp_bank_transfer'), amount: 5000});
  const funded = await step(() => fund(customer.id, 3000, 'jpy'));
  const untouched = await stripe.paymentIntents.retrieve(pi.id);
  const part = await step(async () => keep('applied', 'PaymentIntent', await stripe.paymentIntents.applyCustomerBalance(pi.id, {amount: 2000})));
  let short;
  try {
    await stripe.paymentIntents.applyCustomerBalance(pi.id);
  } catch (err) {
    short = [err.type, err.code, err.param];
  }
  await fund(customer.id, 2000, 'jpy');
  const rest = await step(async () => keep('applied', 'PaymentIntent', await stripe.paymentIntents.applyCustomerBalance(pi.id)));
  let again;
  try {
    await stripe.paymentIntents.applyCustomerBalance(pi.id);
  } catch (err) {
    again = [err.type, err.code];
  }
  const settings = keep('cash balance', 'CashBalance', await stripe.customers.updateCashBalance(customer.id,
    {settings: {reconciliation_mode: 'merchant_default'}})).settings;
  return {funded: funded.events, untouched: untouched.next_action.display_bank_transfer_instructions.amount_remaining,
    part: [part.value.next_action.display_bank_transfer_instructions.amount_remaining, part.events],
    short, rest: [rest.value.status, rest.events], again, settings,
    available: (await stripe.customers.retrieveCashBalance(customer.id)).available};
});
// A partly funded intent canceled: its funds go back to the balance.
await call('cash_balance_cancel', async () => {
  const customer = await stripe.customers.create({});
  const pi = await stripe.paymentIntents.create({...cashIntent(customer.id, 'jp_bank_transfer'), amount: 5000});
  await fund(customer.id, 2000, 'jpy');
  const canceled = await step(async () => keep('canceled', 'PaymentIntent', await stripe.paymentIntents.cancel(pi.id)));
  const txns = keep('transactions', 'ApiList<Stripe.CustomerCashBalanceTransaction>',
    await stripe.customers.listCashBalanceTransactions(customer.id));
  const back = txns.data[0];
  return {status: canceled.value.status, events: canceled.events, back: [back.type, back.net_amount, back.ending_balance,
    back.unapplied_from_payment.payment_intent === pi.id], available: (await stripe.customers.retrieveCashBalance(customer.id)).available};
});
// The CLI fixture's legacy spelling, through stripe-node (whose type takes any string there).
await call('cash_balance_legacy_type', async () => {
  const customer = await stripe.customers.create({});
  const pi = await stripe.paymentIntents.create(cashIntent(customer.id, 'jp_bank_account'));
  return [pi.payment_method_options.customer_balance.bank_transfer.type, pi.next_action.display_bank_transfer_instructions.type];
});
await call('cash_balance_without_customer', () => {
  const params = cashIntent(undefined, 'jp_bank_transfer');
  delete params.customer;
  return stripe.paymentIntents.create(params);
});
const funded = await stripe.customers.create({});
// Every bank transfer scheme's funded transaction, for the type oracle.
await call('fund_each_scheme', async () => {
  const customer = await stripe.customers.create({});
  const types = [];
  for (const currency of ['eur', 'gbp', 'jpy', 'mxn', 'usd']) {
    const txn = keep(`funded ${currency}`, 'CustomerCashBalanceTransaction', await fund(customer.id, 100, currency));
    types.push(txn.funded.bank_transfer.type);
  }
  return {types, available: (await stripe.customers.retrieveCashBalance(customer.id)).available};
});
await call('fund_unknown_customer', () => fund('cus_doesnotexist', 100, 'jpy'));
await call('fund_wrong_currency', () => fund(funded.id, 100, 'xyz'));
await call('fund_missing_amount', () => stripe.testHelpers.customers.fundCashBalance(funded.id, {currency: 'jpy'}));

// Issuing: the legacy test endpoint (stripe-node has no method for it: rawRequest, as for any
// endpoint it does not declare).
const legacy = (card, params) => stripe.rawRequest('POST', `/v1/issuing/cards/${card}/test/authorizations`, params);
async function activeCard(currency, holder) {
  const cardholder = await stripe.issuing.cardholders.create({name: 'My Cardholder', type: 'individual', ...holder});
  return stripe.issuing.cards.create({currency, type: 'virtual', cardholder: cardholder.id, status: 'active'});
}
const usCard = await activeCard('usd', {billing: {address: {line1: '1234 Main Street', city: 'San Francisco', state: 'CA', postal_code: '94111', country: 'US'}}});
await call('legacy_authorization', async () => {
  const made = await step(async () => keep('legacy authorization', 'Issuing.Authorization',
    await legacy(usCard.id, {held_amount: 100, authorization_method: 'online'})));
  const auth = made.value;
  const again = keep('authorization', 'Issuing.Authorization', await stripe.issuing.authorizations.retrieve(auth.id));
  return {object: auth.object, approved: auth.approved, status: auth.status, amount: auth.amount, currency: auth.currency,
    method: auth.authorization_method, card: auth.card.id === usCard.id, retrieved: again.id === auth.id, events: made.events};
});
await call('legacy_authorization_eu', async () => {
  const card = await activeCard('eur', {phone_number: '+34666777888',
    billing: {address: {line1: 'P. de la Castellana 43', city: 'Madrid', state: 'Madrid', postal_code: '28046', country: 'ES'}}});
  const made = await step(async () => keep('legacy authorization eu', 'Issuing.Authorization',
    await legacy(card.id, {held_amount: 100, held_currency: 'eur', authorization_method: 'online'})));
  return {approved: made.value.approved, amount: made.value.amount, currency: made.value.currency, events: made.events};
});
await call('legacy_unknown_card', () => legacy('ic_doesnotexist', {held_amount: 100}));
await call('legacy_missing_amount', () => legacy(usCard.id, {authorization_method: 'online'}));
await call('legacy_wrong_currency', () => legacy(usCard.id, {held_amount: 100, held_currency: 'eur'}));
await call('legacy_helper_name', () => legacy(usCard.id, {held_amount: 100, amount: 100}));
print();
