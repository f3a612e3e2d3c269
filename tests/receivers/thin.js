// A thin event receiver written with Stripe's official Node library as Stripe's docs show
// (express.raw() on the route, stripe.parseEventNotification, then fetchEvent() and
// fetchRelatedObject() through the API), that records what it took. Test fixture of stripe-ops.
//
// Environment: SECRET (the signing secret: for `stripe listen`, what `--print-secret` prints),
// API_BASE and KEY (the API the notifications' events are fetched from).
// POST /thin verifies and fetches; GET /seen answers {"accepted": [{notification, event,
// related}], "posts": N, "refused": N, "errors": [...]}. Prints its port on the first line of
// stdout.
const express = require('express');
const Stripe = require('stripe');

const url = new URL(process.env.API_BASE);
const stripe = new Stripe(process.env.KEY, {host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0});
const secret = process.env.SECRET;
const accepted = [];
const errors = [];
let posts = 0;
let refused = 0;

const app = express();

app.post('/thin', express.raw({type: 'application/json'}), async (req, res) => {
  posts += 1;
  let notification;
  try {
    notification = stripe.parseEventNotification(req.body, req.headers['stripe-signature'], secret);
  } catch (err) {
    refused += 1;
    return res.status(400).send(`Webhook Error: ${err.message}`);
  }
  try {
    const event = await notification.fetchEvent();
    const related = notification.related_object ? await notification.fetchRelatedObject() : null;
    const {fetchEvent, fetchRelatedObject, ...plain} = notification;
    accepted.push({notification: plain, event, related});
    res.json({received: true});
  } catch (err) {
    errors.push(err.message);
    res.status(500).json({error: err.message});
  }
});

app.get('/seen', (req, res) => res.json({accepted, posts, refused, errors}));

const server = app.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
