# Sourced by scripts/example.sh and bench/deploy.sh: the example's staging
# policy (examples/payment-service/kubernetes/local/
# kyverno-image-verification.yaml) ships with a placeholder public key,
# which refuses every image (docs/admission.md). These functions make the
# state dir's signing key (the one the pipeline's sign step uses) and
# write the state dir's copy of the policy trusting its public half,
# which gantry reads instead of the checked-in file: the checkout is
# never modified.

example_policy=examples/payment-service/kubernetes/local/kyverno-image-verification.yaml
# The first line of the placeholder key's base64 (the admission tests
# check it is there).
example_placeholder=MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsuO1J13OgG5C71vn5tOchlg3G3nR

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

# example_policy_trust_key: write the state dir's copy of the policy,
# STATE_DIR/policies/kubernetes/local/kyverno-image-verification.yaml:
# the checked-in policy with its placeholder key block replaced by
# STATE_DIR/keys/cosign.pub. gantry reads an environment's policy file
# from STATE_DIR/policies/PATH when it exists (docs/admission.md), so
# the checkout is never modified. Made again at every call (the key may
# have changed). A checked-in policy whose key someone already replaced
# needs no copy: any old copy is removed.
example_policy_trust_key() {
	local pub copy
	pub="$(example_state_dir)/keys/cosign.pub"
	copy="$(example_policy_copy)"
	if ! grep -q "$example_placeholder" "$example_policy"; then
		rm -f "$copy"
		return 0
	fi
	mkdir -p "$(dirname "$copy")"
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
	' "$example_policy" >"$copy.tmp"
	if grep -q "$example_placeholder" "$copy.tmp" || ! grep -q "BEGIN PUBLIC KEY" "$copy.tmp"; then
		echo "example-key: could not put $pub into a copy of $example_policy" >&2
		rm -f "$copy.tmp"
		return 1
	fi
	mv "$copy.tmp" "$copy"
	echo "==> $copy: the example's local policy trusting $pub (gantry reads it instead of the checked-in one)"
}

# example_policy_copy: where the state dir's copy of the policy lives: its
# path as the pipeline's environments name it, under STATE_DIR/policies.
example_policy_copy() {
	printf '%s/policies/%s\n' "$(example_state_dir)" "${example_policy#examples/payment-service/}"
}

# example_policy_restore: nothing to restore (the checkout is never
# changed); kept for the scripts that call it.
example_policy_restore() {
	:
}
