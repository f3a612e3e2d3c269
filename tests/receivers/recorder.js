// A webhook receiver written with Stripe's official Node library as Stripe's docs show
// (express.raw() on the route, stripe.webhooks.constructEvent), that records what it took.
// Test fixture of stripe-ops.
//
// Environment: SECRET (the signing secret: for `stripe listen`, what `--print-secret` prints),
// FAIL_FIRST=1 (answer 500 to the first delivery of each event, as a handler that crashed once).
// POST /webhook verifies; GET /seen answers {"accepted": [{id, type, api_version, account?, request?}], "posts": N,
// "refused": N}. Prints its port on the first line of stdout.
const express = require('express');
const stripe = require('stripe')('sk_test_unused_by_webhooks');

const secret = process.env.SECRET;
const failFirst = process.env.FAIL_FIRST === '1';
const accepted = [];
const failedOnce = new Set();
let posts = 0;
let refused = 0;

const app = express();

app.post('/webhook', express.raw({type: 'application/json'}), (req, res) => {
  posts += 1;
  let event;
  try {
    event = stripe.webhooks.constructEvent(req.body, req.headers['stripe-signature'], secret);
  } catch (err) {
    refused += 1;
    return res.status(400).send(`Webhook Error: ${err.message}`);
  }
  if (failFirst && !failedOnce.has(event.id)) {
    failedOnce.add(event.id);
    return res.status(500).json({error: 'the handler crashed'});
  }
  // A connected account's event names it (`account`; the platform's own has none), kept with
  // the request that caused it: a deleted account's events can no longer be listed by the API.
  const got = {id: event.id, type: event.type, api_version: event.api_version};
  if (event.account) {
    got.account = event.account;
    got.request = event.request && event.request.id;
  }
  accepted.push(got);
  res.json({received: true});
});

app.get('/seen', (req, res) => res.json({accepted, posts, refused}));

const server = app.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
