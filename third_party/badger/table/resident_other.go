//go:build !linux

package table

// dropResident is Linux-only (resident_linux.go).
func dropResident([]byte) {}
