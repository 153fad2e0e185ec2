package load

import "testing"

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte("rate: 50\nduration: 2m\nthresholds:\n  http_req_duration: ['p(99)<500']\nrequests:\n  - {url: 'http://x/{{uuid}}', checks: [{status: 200}, {json: '{.a}', equals: 1}]}\n"))
	f.Add([]byte("stages: [{duration: 1s, target: 5}]\nrequests: [{url: http://x}]\nthresholds: {http_req_failed: [{threshold: rate<0.1, abortOnFail: true, delayAbortEval: 1s}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec("fuzz.yaml", data)
		if err != nil {
			return
		}
		if cfg, err := FromSpec(s); err == nil {
			_, _ = New(cfg)
		}
	})
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"http_req_duration:p(99)<500", "http_req_failed:rate<0.001", "checks:rate>=0.99", "http_reqs:count>10", "x:avg<1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThreshold(s)
		if err != nil {
			return
		}
		th.Eval(&Snapshot{})
	})
}
