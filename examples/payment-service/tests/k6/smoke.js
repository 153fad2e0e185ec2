// Smoke test after a staging deploy: 50 requests/s for 2 minutes against
// the key endpoints. Fails when P99 latency reaches 500 ms or more than
// 0.1% of requests fail.
//
//   k6 run -e BASE_URL=https://payments.staging.example tests/k6/smoke.js
import { paymentMix } from './lib.js';

export const options = {
  scenarios: {
    smoke: {
      executor: 'constant-arrival-rate',
      rate: 50,
      timeUnit: '1s',
      duration: '2m',
      preAllocatedVUs: 20,
      maxVUs: 100,
    },
  },
  thresholds: {
    http_req_duration: ['p(99)<500'],
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999'],
  },
};

export default function () {
  paymentMix();
}
