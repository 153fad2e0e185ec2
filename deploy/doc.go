// Package deploy holds the tests of gantry's own Helm chart
// (deploy/gantry): lint, renderings of its value combinations checked
// object by object and against the Kubernetes schemas, and an install,
// upgrade and uninstall on the Kubernetes test bed. See docs/chart.md.
package deploy
