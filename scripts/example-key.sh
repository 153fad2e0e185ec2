# Sourced by scripts/example.sh and bench/deploy.sh: the example's staging
# policy (examples/payment-service/kubernetes/local/
# kyverno-image-verification.yaml) ships with a placeholder public key,
# which refuses every image (docs/admission.md). These functions make the
# state dir's signing key (the one the pipeline's sign step uses) and put
# its public half into the policy for the length of the script, then put
# the placeholder back, so the checkout is left as it was.

example_policy=examples/payment-service/kubernetes/local/kyverno-image-verification.yaml
# The first line of the placeholder key's base64 (the admission tests
# check it is there).
example_placeholder=MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsuO1J13OgG5C71vn5tOchlg3G3nR
example_policy_saved=

example_state_dir() {
	printf '%s\n' "${GANTRY_STATE_DIR:-$HOME/.local/share/gantry}"
}

# example_key_ensure GANTRY: make STATE_DIR/keys/cosign.key and cosign.pub
# unless they exist, encrypted with $COSIGN_PASSWORD (empty when unset,
# as the sign step reads it).
example_key_ensure() {
	local keys
	keys="$(example_state_dir)/keys"
	[ -f "$keys/cosign.key" ] && [ -f "$keys/cosign.pub" ] && return
	echo "==> generating the signing key in $keys"
	COSIGN_PASSWORD="${COSIGN_PASSWORD-}" "$1" keys generate --dir "$keys" </dev/null
}

# example_policy_trust_key: replace the placeholder key block of the
# policy by STATE_DIR/keys/cosign.pub, keeping a copy to restore. A policy
# whose key someone has already replaced is left alone.
example_policy_trust_key() {
	local pub
	pub="$(example_state_dir)/keys/cosign.pub"
	grep -q "$example_placeholder" "$example_policy" || return 0
	example_policy_saved=$(mktemp)
	cp "$example_policy" "$example_policy_saved"
	awk -v pubfile="$pub" '
		/-----BEGIN PUBLIC KEY-----/ && !done {
			indent = substr($0, 1, index($0, "-----BEGIN") - 1)
			while ((getline line < pubfile) > 0) print indent line
			close(pubfile)
			skipping = 1
			next
		}
		skipping && /-----END PUBLIC KEY-----/ { skipping = 0; done = 1; next }
		!skipping { print }
	' "$example_policy_saved" >"$example_policy"
	if grep -q "$example_placeholder" "$example_policy" || ! grep -q "BEGIN PUBLIC KEY" "$example_policy"; then
		echo "example-key: could not put $pub into $example_policy" >&2
		example_policy_restore
		return 1
	fi
	echo "==> $example_policy trusts $pub for this run"
}

# example_policy_restore: put the placeholder back (an EXIT trap).
example_policy_restore() {
	[ -n "$example_policy_saved" ] || return 0
	cp "$example_policy_saved" "$example_policy"
	rm -f "$example_policy_saved"
	example_policy_saved=
}
