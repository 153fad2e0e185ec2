package testenv

// Optional lists the peers a CI run may lack, each with the reason. A
// test that misses one of these skips even under CI=true; every other
// missing tool or data file fails the test there. Keep the list short:
// each entry is a test that CI does not run.
var Optional = map[string]string{
	// internal/sbom's comparison with syft's SBOM. A cold build of syft
	// v1.57.1 is the most expensive peer (see scripts/deps.sh); it is
	// built with GANTRY_ALL_PEERS=1 scripts/deps.sh.
	"syft": "a cold build of syft costs more of the CI budget than its one comparison test is worth; GANTRY_ALL_PEERS=1 scripts/deps.sh builds it",
}
