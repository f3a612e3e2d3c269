// Stripe's own Node library as the oracle of stripe-ops' event catalogue.
//
//   node oracle.mjs EVENTS.json SECRET
//
// EVENTS.json is a list of {name, body, header}: every template as stripe-ops renders and signs
// it; or of {name, body, ts}: an answer of the sandbox's API with the stripe-node type it must
// be (`Coupon`, `Issuing.Cardholder`, `ApiList<Stripe.Price>`), or an event it recorded (no
// header: not signed, typed by its event type). For each one:
//   - a snapshot event must pass stripe.webhooks.constructEvent, a thin one
//     stripe.parseEventNotification (which refuses the other kind);
//   - all of them together must compile under `tsc --strict` assigned to stripe-node's own type
//     for their event type (Stripe.InvoiceFinalizedEvent, Stripe.Events.
//     V1InvoicePaidEventNotification), one compile for every template, with the TypeScript
//     compiler pinned in package-lock.json. A body field stripe-node does not declare, a field it
//     requires and the body lacks, or a value of the wrong type fails, naming the field.
// Prints {failures: [{name, check, message}], checked, compiled_ms} as JSON.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import Stripe from 'stripe';

const here = path.dirname(fileURLToPath(import.meta.url));
const [eventsFile, secret] = process.argv.slice(2);
const events = JSON.parse(fs.readFileSync(eventsFile, 'utf8'));
const stripe = new Stripe('sk_test_oracle');
const failures = [];

// stripe-node's declarations: event type -> the interface of that type.
const typesDir = path.join(here, 'node_modules', 'stripe', 'cjs', 'resources');
const interfaces = new Map();
for (const [file, base] of [
  ['Events.d.ts', 'EventBase'],
  [path.join('V2', 'Core', 'Events.d.ts'), 'EventNotificationBase'],
]) {
  const text = fs.readFileSync(path.join(typesDir, file), 'utf8');
  const re = new RegExp(`export interface (\\w+) extends ${base} \\{\\s*type: '([^']+)';`, 'g');
  for (const [, name, type] of text.matchAll(re)) {
    if (base === 'EventBase' || name.endsWith('EventNotification')) {
      interfaces.set(type, base === 'EventBase' ? `Stripe.${name}` : `Stripe.Events.${name}`);
    }
  }
}

for (const e of events) {
  const parsed = JSON.parse(e.body);
  if (e.ts || !e.header) {
    if (!e.ts && !interfaces.has(parsed.type)) {
      failures.push({name: e.name, check: 'type', message: `stripe-node declares no type ${parsed.type}`});
    }
    continue;
  }
  try {
    if (parsed.object === 'v2.core.event') {
      const n = stripe.parseEventNotification(e.body, e.header, secret);
      if (n.type !== parsed.type) throw new Error(`parsed as ${n.type}`);
      if (parsed.related_object && typeof n.fetchRelatedObject !== 'function') {
        throw new Error('no fetchRelatedObject on a notification with a related object');
      }
    } else {
      const event = stripe.webhooks.constructEvent(e.body, e.header, secret);
      if (typeof event.data?.object?.object !== 'string') throw new Error('data.object has no object');
    }
  } catch (err) {
    failures.push({name: e.name, check: 'parse', message: err.message});
  }
  if (!interfaces.has(parsed.type)) {
    failures.push({name: e.name, check: 'type', message: `stripe-node declares no type ${parsed.type}`});
  }
}

// One TypeScript file: each body assigned to its type. A webhook body holds decimal strings
// where stripe-node 23 types its Decimal class (constructEvent returns JSON.parse's output), and
// a notification's methods are the library's, not the body's.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stripe-ops-oracle-'));
fs.symlinkSync(path.join(here, 'node_modules'), path.join(dir, 'node_modules'));
const lines = [
  "import Stripe from 'stripe';",
  'type Wire<T> = T extends Stripe.Decimal ? string : T extends string | number | boolean | null | undefined ? T : T extends (...args: any[]) => any ? never : { [K in keyof T]: Wire<T[K]> };',
  "type Body<T> = Wire<Omit<T, 'fetchEvent' | 'fetchRelatedObject'>>;",
];
const ranges = [];
events.forEach((e, i) => {
  const type = e.ts ? `Stripe.${e.ts}` : interfaces.get(JSON.parse(e.body).type);
  if (!type) return;
  const start = lines.length + 1;
  const statement = `export const t${i}: Body<${type}> = ${e.body};`.split('\n');
  lines.push(...statement);
  ranges.push({name: e.name, start, end: start + statement.length});
});
fs.writeFileSync(path.join(dir, 'oracle.ts'), lines.join('\n') + '\n');
fs.writeFileSync(
  path.join(dir, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext',
      target: 'es2022', skipLibCheck: true, types: [],
    },
    files: ['oracle.ts'],
  }),
);
const started = Date.now();
let output = '';
try {
  execFileSync(process.execPath, [path.join(here, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
} catch (err) {
  output = `${err.stdout || ''}${err.stderr || ''}`;
  if (!output.trim()) output = `tsc failed: ${err.message}`;
}
const compiledMs = Date.now() - started;
for (const m of output.matchAll(/oracle\.ts\((\d+),\d+\): (error TS\d+: .*)/g)) {
  const line = Number(m[1]);
  const owner = ranges.find((r) => line >= r.start && line < r.end);
  // The line names the field when the message does not ("Type 'string' is not assignable").
  const at = lines[line - 1] ? lines[line - 1].trim().slice(0, 120) : '';
  failures.push({name: owner ? owner.name : `line ${line}`, check: 'tsc', message: `${m[2]} (at ${at})`});
}
if (output && !/oracle\.ts\(/.test(output)) failures.push({name: '(tsc)', check: 'tsc', message: output.slice(0, 2000)});
fs.rmSync(dir, {recursive: true, force: true});
console.log(JSON.stringify({failures, checked: events.length, compiled_ms: compiledMs}));
