package testenv

// Optional lists the peers a CI run may lack, each with the reason. A
// test that misses one of these skips even under CI=true; every other
// missing tool or data file fails the test there. Keep the list short:
// each entry is a test that CI does not run.
var Optional = map[string]string{}
