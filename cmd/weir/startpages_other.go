//go:build !linux

package main

// releaseStartPagesLater is Linux-only (startpages_linux.go).
func releaseStartPagesLater() {}
