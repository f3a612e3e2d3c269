// What the stripe-node call scripts (balance-calls.mjs, proration-calls.mjs) share: a client of
// the sandbox's Stripe API from the command line, each named call's result or typed error, the
// answers kept for the type oracle, and the events each step caused. Test fixture of stripe-ops.
//
//   const {stripe, call, keep, step, newest, eventsSince, print} = calls(process.argv.slice(2));
//
// `print()` writes {results: {name: {ok, value} | {ok: false, class, type, code, param, message,
// status}}, typed: [{name, body, ts?}]} as JSON: `typed` holds every answer kept (with its
// stripe-node type) and every event a step caused, for the type oracle (oracle.mjs, oracle.py).
import Stripe from 'stripe';

export function calls([base, key]) {
  const url = new URL(base);
  const stripe = new Stripe(key, {host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0});
  const results = {};
  const typed = [];
  // An answer as the API sent it (stripe-node adds `lastResponse`).
  const body = (o) => JSON.stringify(o, (k, v) => (k === 'lastResponse' ? undefined : v));
  const keep = (name, ts, o) => {
    typed.push({name, ts, body: body(o)});
    return o;
  };
  async function call(name, f) {
    try {
      results[name] = {ok: true, value: await f()};
    } catch (err) {
      results[name] = {
        ok: false, class: err.constructor.name, type: err.type, code: err.code,
        param: err.param, message: err.raw?.message ?? err.message, status: err.statusCode,
      };
    }
  }
  // The events made after the event `marker`, oldest first: the newest first in a list, down
  // to the marker.
  const newest = async () => (await stripe.events.list({limit: 1})).data[0]?.id;
  async function eventsSince(marker) {
    const made = [];
    for (const e of (await stripe.events.list({limit: 100})).data) {
      if (e.id === marker) break;
      made.push(e);
    }
    made.reverse();
    for (const e of made) typed.push({name: `${e.type} event`, body: body(e)});
    return made;
  }
  // `f`'s value, the types of the events it caused in order (`events`) and those events (`made`).
  async function step(f) {
    const marker = await newest();
    const value = await f();
    const made = await eventsSince(marker);
    return {value, events: made.map((e) => e.type), made};
  }
  const print = () => console.log(JSON.stringify({results, typed}));
  return {stripe, call, keep, step, newest, eventsSince, print};
}
