// Soak test in staging: 200 requests/s sustained for 30 minutes. Watch
// memory, goroutines and the database pool meanwhile (the alert rules in
// deploy/prometheus/alerts.yaml must stay silent).
//
//   k6 run -e BASE_URL=https://payments.staging.example tests/k6/soak.js
import { paymentMix } from './lib.js';

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: 200,
      timeUnit: '1s',
      duration: '30m',
      preAllocatedVUs: 50,
      maxVUs: 400,
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
