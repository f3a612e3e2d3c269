// A webhook written as a Web-standard route handler, the way a Next.js App Router route
// (app/api/webhooks/route.ts) does it with Stripe's official Node library: `await req.text()`
// for the raw body, stripe.webhooks.constructEvent, `Response.json`. A few lines of node:http
// below turn each request into a `Request` and the `Response` back, as Next.js would. It fulfils
// an order per paid Checkout Session; `check --observe-url <base>/state` reads "orders <n>".
// Test fixture of stripe-ops.
//
// Environment: SECRET (the webhook signing secret), BUG:
//   none   correct
//   json   `await req.json()`, then constructEvent(JSON.stringify(payload), …): verifies a
//          re-serialised body, so every real Stripe delivery is refused
// Prints its port on the first line of stdout.
import http from 'node:http';
import Stripe from 'stripe';

const stripe = new Stripe('sk_test_unused_by_webhooks');
const secret = process.env.SECRET;
const bug = process.env.BUG || 'none';
const orders = new Set(); // Checkout Session ids fulfilled
const seen = new Set(); // event ids

export async function POST(req) {
  const body = bug === 'json' ? JSON.stringify(await req.json()) : await req.text();
  const signature = req.headers.get('stripe-signature');
  let event;
  try {
    event = stripe.webhooks.constructEvent(body, signature, secret);
  } catch (err) {
    return new Response(`Webhook Error: ${err.message}`, {status: 400});
  }
  if (!seen.has(event.id)) {
    seen.add(event.id);
    if (event.type === 'checkout.session.completed' && event.data.object.payment_status === 'paid') {
      orders.add(event.data.object.id);
    }
  }
  return Response.json({received: true});
}

export async function GET() {
  return new Response(`orders ${orders.size}\n`, {headers: {'content-type': 'text/plain'}});
}

const routes = {'/api/webhooks': {POST}, '/state': {GET}};

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const handler = (routes[req.url] || {})[req.method];
  const response = handler
    ? await handler(
        new Request(`http://${req.headers.host}${req.url}`, {
          method: req.method,
          headers: req.headers,
          body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
        })
      ).catch((err) => new Response(`Internal Server Error: ${err.message}`, {status: 500}))
    : new Response('Not Found', {status: 404});
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
