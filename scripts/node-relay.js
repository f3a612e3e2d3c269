// The shape the fan-out relay grew from, kept as the yardstick of `cargo bench --bench fanout`:
// a Node relay that holds nothing (no spool, no verification, no retries), forwards each POST
// to every target at once over kept-alive connections and answers 200 once all of them have
// answered. Plain `http`, no packages.
//   node scripts/node-relay.js http://127.0.0.1:4001/hook http://127.0.0.1:4002/hook ...
// Prints its port on the first line of stdout; SIGTERM stops it.
'use strict';
const http = require('http');

const targets = process.argv.slice(2).map((u) => new URL(u));
if (targets.length === 0) {
  console.error('usage: node scripts/node-relay.js TARGET_URL...');
  process.exit(2);
}
const agent = new http.Agent({keepAlive: true, maxSockets: 256});

function forward(target, body, headers) {
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        method: 'POST',
        hostname: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        headers: {
          'content-type': headers['content-type'] || 'application/json; charset=utf-8',
          'content-length': body.length,
          ...(headers['stripe-signature'] ? {'stripe-signature': headers['stripe-signature']} : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', () => resolve(null));
    req.end(body);
  });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    const statuses = await Promise.all(targets.map((t) => forward(t, body, req.headers)));
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify({received: true, targets: statuses}));
  });
});
server.keepAliveTimeout = 75000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
