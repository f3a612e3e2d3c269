// A subscription service that provisions a tenant per subscription, its webhook written with
// Stripe's official Node library the way Stripe's docs show (express.raw() on the webhook route,
// stripe.webhooks.constructEvent, a switch on event.type, 200 for every other type). Not a top-up
// app: its state is what `check --observe-url <base>/state` reads. Test fixture of stripe-ops.
//
// Environment: SECRET (the webhook signing secret), BUG (which classic bug to have):
//   none            correct: each event id handled once, a tenant per subscription id
//   slow            does the provisioning inside the request: answers after SLOW_MS (1500)
//   json-first      app.use(express.json()) before the webhook route: constructEvent gets a
//                   parsed object and refuses every event
//   500-unknown     throws on the types it does not handle (Express answers 500)
//   no-idempotency  provisions again for every delivery of the same event
// GET /state prints "tenants <n>\npayments <n>\n". Prints its port on the first line of stdout.
const express = require('express');
const stripe = require('stripe')('sk_test_unused_by_webhooks');

const secret = process.env.SECRET;
const bug = process.env.BUG || 'none';
const SLOW_MS = Number(process.env.SLOW_MS || 1500);

const tenants = new Map(); // subscription id -> {customer, status}
const processed = new Set(); // event ids
let payments = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function provision(subscription) {
  if (bug === 'no-idempotency') {
    // Every delivery provisions a new instance, keyed by nothing.
    tenants.set(`${subscription.id}#${tenants.size}`, {customer: subscription.customer});
    return;
  }
  tenants.set(subscription.id, {customer: subscription.customer, status: subscription.status});
}

async function handle(event) {
  switch (event.type) {
    case 'customer.subscription.created':
      await provision(event.data.object);
      break;
    case 'customer.subscription.deleted':
      tenants.delete(event.data.object.id);
      break;
    case 'invoice.paid':
      payments += 1;
      break;
    default:
      if (bug === '500-unknown') throw new Error(`Unhandled event type ${event.type}`);
  }
}

const app = express();
if (bug === 'json-first') app.use(express.json());

app.post('/webhooks', express.raw({type: 'application/json'}), async (req, res, next) => {
  let event;
  try {
    event = stripe.webhooks.constructEvent(req.body, req.headers['stripe-signature'], secret);
  } catch (err) {
    return res.status(400).send(`Webhook Error: ${err.message}`);
  }
  try {
    if (bug === 'slow') await sleep(SLOW_MS);
    if (bug === 'no-idempotency' || !processed.has(event.id)) {
      processed.add(event.id);
      await handle(event);
    }
  } catch (err) {
    return next(err);
  }
  res.json({received: true});
});

app.get('/state', (req, res) => {
  res.type('text/plain').send(`tenants ${tenants.size}\npayments ${payments}\n`);
});

// Express's own error page for a thrown handler, without the stack.
app.use((err, req, res, next) =>
  res.status(err.status || 500).send(`${err.status ? "Bad Request" : "Internal Server Error"}: ${err.message}`)
);

const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
