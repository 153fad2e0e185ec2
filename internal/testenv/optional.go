package testenv

// Optional lists the peers a CI run may lack, each with the reason. A
// test that misses one of these skips even under CI=true; every other
// missing tool or data file fails the test there. Keep the list short:
// each entry is a test that CI does not run.
var Optional = map[string]string{
	// internal/sbom's comparison with syft's SBOM. Measured cold on the
	// 2-core machine: syft v1.57.1 downloads 272 modules (2.1 GB) and had
	// used 10.5 CPU-min, still unfinished after 30 min under the team's
	// load, against 9.1 for terraform and 5.8 for k6 (which CI builds).
	"syft": "a cold build of syft costs more of the CI budget than any other peer (over 10.5 CPU-min and 2.1 GB of modules) for one comparison test; GANTRY_ALL_PEERS=1 scripts/deps.sh builds it",
}
