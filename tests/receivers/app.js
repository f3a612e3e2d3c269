// A small top-up app (docs/CONTRACT.md section 1) whose webhook is written with Stripe's official
// Node library the way Stripe's docs show: express.raw() on the webhook route and
// stripe.webhooks.constructEvent(req.body, signature, secret). Test fixture of stripe-ops.
//
// Environment: SECRET (the webhook signing secret), BUG (which classic bug to have):
//   none                  correct: verifies the raw body, credits each event id and session once
//   reserialize           parses the body with express.json() and verifies JSON.stringify(body)
//   async                 correct, asynchronous: answers 200 first and credits 150 ms later
//   async-no-idempotency  answers 200 first, credits 150 ms later, every delivery
// POST /api/webhooks/stripe-thin is an event destination with the thin payload, read with
// stripe.parseEventNotification as Stripe's docs show. Prints its port on the first line of stdout.
const express = require('express');
const crypto = require('crypto');
const stripe = require('stripe')('sk_test_unused_by_webhooks');

const secret = process.env.SECRET;
const bug = process.env.BUG || 'none';
const LATER_MS = 150;

const orgs = new Map(); // orgId -> {email, password, balance, events: []}
const tokens = new Map(); // token -> orgId
const seenEvents = new Set();
const seenSessions = new Set();
const id = (p) => `${p}_${crypto.randomBytes(12).toString('hex')}`;

const app = express();

function credit(event) {
  const session = event.data.object;
  const org = orgs.get((session.metadata || {}).orgId);
  if (!org || session.payment_status !== 'paid') return;
  if (bug !== 'async-no-idempotency') {
    if (seenEvents.has(event.id) || seenSessions.has(session.id)) return;
    seenEvents.add(event.id);
    seenSessions.add(session.id);
  }
  org.balance += session.amount_total;
  org.events.unshift({
    id: id('be'),
    eventType: 'stripe_topup',
    amountCents: session.amount_total,
    metadata: {stripeSessionId: session.id, stripeEventId: event.id, orgId: session.metadata.orgId},
    createdAt: new Date().toISOString(),
  });
}

function handle(event, res) {
  if (event.type !== 'checkout.session.completed') return res.json({received: true});
  if (bug.startsWith('async')) {
    res.json({received: true});
    setTimeout(() => credit(event), LATER_MS);
  } else {
    credit(event);
    res.json({received: true});
  }
}

// An event destination with the thin payload, as Stripe's docs show it.
app.post('/api/webhooks/stripe-thin', express.raw({type: 'application/json'}), (req, res) => {
  let notification;
  try {
    notification = stripe.parseEventNotification(req.body, req.headers['stripe-signature'], secret);
  } catch (err) {
    return res.status(400).send(`Webhook Error: ${err.message}`);
  }
  res.json({received: true, type: notification.type, related: notification.related_object.type});
});

if (bug === 'reserialize') {
  // The classic bug (stripe-node #341): the body is parsed for every route, then re-serialised.
  app.use(express.json({limit: '1mb'}));
  app.post('/api/webhooks/stripe', (req, res) => {
    let event;
    try {
      event = stripe.webhooks.constructEvent(
        JSON.stringify(req.body),
        req.headers['stripe-signature'],
        secret
      );
    } catch (err) {
      return res.status(400).send(`Webhook Error: ${err.message}`);
    }
    handle(event, res);
  });
} else {
  // As Stripe's docs show: the raw body on the webhook route, JSON everywhere else.
  app.post('/api/webhooks/stripe', express.raw({type: 'application/json'}), (req, res) => {
    let event;
    try {
      event = stripe.webhooks.constructEvent(req.body, req.headers['stripe-signature'], secret);
    } catch (err) {
      return res.status(400).send(`Webhook Error: ${err.message}`);
    }
    handle(event, res);
  });
  app.use(express.json());
}

function auth(req, res) {
  const token = (req.headers.authorization || '').replace(/^Bearer /, '');
  const orgId = tokens.get(token);
  if (!orgId) {
    res.status(401).json({error: {code: 'unauthorized', message: 'bad token'}});
    return null;
  }
  return [orgId, orgs.get(orgId)];
}

function issue(orgId) {
  const token = id('tok');
  tokens.set(token, orgId);
  return token;
}

app.get('/health', (req, res) => res.json({status: 'ok'}));
app.post('/api/org/register', (req, res) => {
  const {email, password} = req.body || {};
  for (const org of orgs.values()) {
    if (org.email === email) {
      return res.status(409).json({error: {code: 'conflict', message: 'email_already_registered'}});
    }
  }
  const orgId = id('org');
  orgs.set(orgId, {email, password, balance: 0, events: []});
  res.json({token: issue(orgId), orgId});
});
app.post('/api/org/api-keys', (req, res) => {
  const {email, password} = req.body || {};
  for (const [orgId, org] of orgs) {
    if (org.email === email && org.password === password) return res.json({token: issue(orgId)});
  }
  res.status(401).json({error: {code: 'invalid_credentials', message: 'wrong email or password'}});
});
app.get('/api/billing/account', (req, res) => {
  const who = auth(req, res);
  if (!who) return;
  const [orgId, org] = who;
  res.json({account: {id: `acc_${orgId}`, org_id: orgId, balance_cents: org.balance, currency: 'usd'}});
});
app.get('/api/billing/events', (req, res) => {
  const who = auth(req, res);
  if (who) res.json({events: who[1].events});
});
app.post('/api/billing/topups/checkout', (req, res) => {
  const who = auth(req, res);
  if (!who) return;
  const session = id('cs_test');
  res.json({
    checkoutUrl: `http://127.0.0.1/checkout/${session}`,
    stripeSessionId: session,
    paymentIntentId: id('pi'),
  });
});

const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
