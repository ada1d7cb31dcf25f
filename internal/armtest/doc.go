// Package armtest holds the tests of what Weir ships rather than of its
// code: the release binaries for ARM boards, run under qemu-user
// emulation as real processes with real MQTT clients (emulated_test.go),
// and the deployment files in deploy/ (deploy_test.go).
//
// The emulated test runs only when WEIR_ARM_TEST=1, which `make test-arm`
// (part of `make test`) sets after building the binaries; it then fails,
// never skips, when qemu-user or the MQTT clients are missing. The package
// has no non-test code and must never be imported.
package armtest
