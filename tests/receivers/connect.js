// A Connect platform (a marketplace) whose webhook is written with Stripe's official Node library
// the way Stripe's Connect docs show: one route for the platform's own events and its connected
// accounts' events, told apart by `event.account` (set only on a connected account's event). A
// payment on the platform credits the platform's ledger; a payment on a connected account
// credits that account's. `check --observe-url <base>/platform` reads only the platform's
// balance. Test fixture of stripe-ops.
//
// Environment: SECRET (the webhook signing secret), BUG:
//   none               correct
//   platform-credited  ignores event.account: a connected account's sale credits the platform
// Prints its port on the first line of stdout.
const express = require('express');
const stripe = require('stripe')('sk_test_unused_by_webhooks');

const secret = process.env.SECRET;
const bug = process.env.BUG || 'none';
const ledger = new Map(); // 'platform' or an acct_ id -> cents
const accounts = new Map(); // acct_ id -> charges_enabled
const seen = new Set();

const credit = (who, cents) => ledger.set(who, (ledger.get(who) || 0) + cents);

const app = express();
app.post('/connect/webhook', express.raw({type: 'application/json'}), (req, res) => {
  let event;
  try {
    event = stripe.webhooks.constructEvent(req.body, req.headers['stripe-signature'], secret);
  } catch (err) {
    return res.status(400).send(`Webhook Error: ${err.message}`);
  }
  if (seen.has(event.id)) return res.json({received: true});
  seen.add(event.id);
  const owner = bug === 'platform-credited' ? 'platform' : event.account || 'platform';
  switch (event.type) {
    case 'payment_intent.succeeded':
      credit(owner, event.data.object.amount_received);
      break;
    case 'account.updated':
      accounts.set(event.data.object.id, event.data.object.charges_enabled);
      break;
    default:
      break;
  }
  res.json({received: true});
});
app.get('/platform', (req, res) => {
  res.type('text/plain').send(`platform_balance ${ledger.get('platform') || 0}\n`);
});

const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
