#!/usr/bin/env bash
# Admission webhook benchmark: the latency (p50, p99) of one admission
# decision with 100 AdmissionReviews in flight at once, signature and
# evidence lookups cached by digest, through gantry admission's webhook
# (AdmissionReview JSON over HTTPS to /mutate) against the same check
# in-process (admission.Reviewer.Review), for a signed image with passing
# evidence by tag (resolved at the registry each time) and by digest (no
# registry request). One go test -bench run (internal/admissionhook
# BenchmarkWebhook) against an embedded registry on loopback.
#
#   bench/admission.sh            N=2000 decisions per case
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run XXX -bench BenchmarkWebhook -benchtime "${N:-2000}x" ./internal/admissionhook/
