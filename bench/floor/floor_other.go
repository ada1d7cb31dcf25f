//go:build !linux

package main

import (
	"errors"
	"net"
	"time"
)

type syscalls struct{}

var rawCalls, runtimeCalls syscalls

func run(*net.TCPAddr, time.Duration, syscalls) error {
	return errors.New("the floor relay uses epoll: Linux only")
}

func probeWakeups(time.Duration, time.Duration) error {
	return errors.New("the wake-up probe is Linux only")
}
