# Sourced by the scripts: where tests and the example find their tools.
gobin=$(go env GOPATH)/bin
export PATH="$gobin:$PATH"
# One tool cache (golangci-lint, tflint, fauxqs) for every state dir and test.
export GANTRY_TOOL_CACHE="${GANTRY_TOOL_CACHE:-$HOME/.cache/gantry/tools}"
export GANTRY_TEST_TOOLCACHE="${GANTRY_TEST_TOOLCACHE:-$GANTRY_TOOL_CACHE}"
# Real data for tests (Go vulnerability DB, CycloneDX schemas, Kubernetes
# OpenAPI): shared/data beside the repository.
if [ -z "${GANTRY_TEST_DATA:-}" ]; then
	GANTRY_TEST_DATA="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/data"
	export GANTRY_TEST_DATA
fi
# The offline OSV database the vuln-scan step reads (the real Go
# vulnerability database in shared/data), unless one is configured.
if [ -z "${GANTRY_VULN_DB:-}" ] && [ -f "$GANTRY_TEST_DATA/go-vulndb-osv.tar.gz" ]; then
	export GANTRY_VULN_DB="$GANTRY_TEST_DATA/go-vulndb-osv.tar.gz"
fi
