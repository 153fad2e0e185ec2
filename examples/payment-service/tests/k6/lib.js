// Shared request mix for the smoke and soak tests. Each iteration sends
// exactly one request, so the scenario's rate is the request rate. Per VU
// the iterations cycle through: create an intent (with an
// Idempotency-Key), read it back, confirm it with a test card.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');

const json = { headers: { 'Content-Type': 'application/json' } };
let lastIntent = null;

function create() {
  const key = `k6-${exec.vu.idInTest}-${exec.vu.iterationInScenario}-${Date.now()}`;
  const res = http.post(`${BASE_URL}/v1/payment_intents`, JSON.stringify({ amount: 1099, currency: 'usd' }), {
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
    tags: { name: 'POST /v1/payment_intents' },
  });
  const ok = check(res, {
    'create: 201': (r) => r.status === 201,
    'create: requires_confirmation': (r) => r.status === 201 && r.json('status') === 'requires_confirmation',
  });
  lastIntent = ok ? res.json('id') : null;
}

function get() {
  const res = http.get(`${BASE_URL}/v1/payment_intents/${lastIntent}`, { tags: { name: 'GET /v1/payment_intents/{id}' } });
  check(res, { 'get: 200': (r) => r.status === 200 });
}

function confirm() {
  const res = http.post(
    `${BASE_URL}/v1/payment_intents/${lastIntent}/confirm`,
    JSON.stringify({ card: { number: '4242424242424242' } }),
    Object.assign({ tags: { name: 'POST /v1/payment_intents/{id}/confirm' } }, json),
  );
  check(res, { 'confirm: succeeded': (r) => r.status === 200 && r.json('status') === 'succeeded' });
  lastIntent = null;
}

export function paymentMix() {
  const step = exec.vu.iterationInScenario % 3;
  if (step === 0 || lastIntent === null) {
    create();
  } else if (step === 1) {
    get();
  } else {
    confirm();
  }
}
