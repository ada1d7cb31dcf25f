// Command weir runs the Weir MQTT broker.
//
// Without flags it listens on :1883 (MQTT over TCP) and :8080/mqtt (MQTT
// over WebSocket) with the built-in defaults. See deploy/weir.example.yaml
// for the configuration file.
//
// Exit status: 0 after a clean shutdown, 1 on errors (invalid
// configuration, a listener that cannot start, a shutdown that did not
// finish in time, a second signal), 2 on bad command-line usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/broker"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// shutdownTimeout bounds the graceful shutdown; after it the remaining
// connections are closed at once.
const shutdownTimeout = 10 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "passwd" {
		return runPasswd(args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("weir", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "read the configuration from `FILE` (YAML); without it, the built-in defaults apply")
	checkPath := fs.String("check-config", "", "validate the configuration `FILE`, print every problem, exit 0 if it is valid")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "", "log `format`: text or json (overrides log.format)")
	logLevel := fs.String("log-level", "", "log `level`: debug, info, warn or error (overrides log.level)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: weir [flags]\n       weir passwd [-c] [-b] [-D] FILE USERNAME [PASSWORD]   (see weir passwd -h)\n\n"+
			"Weir is an MQTT broker for edge gateways.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "weir: unexpected argument %q; see weir -help\n", fs.Arg(0))
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stdout, versionString())
		return 0
	case *checkPath != "" && *configPath != "":
		fmt.Fprintln(stderr, "weir: use -config or -check-config, not both")
		return 2
	case *checkPath != "":
		if _, err := loadConfig(*checkPath); err != nil {
			printConfigErrors(stderr, *checkPath, err)
			return 1
		}
		fmt.Fprintln(stdout, "config OK")
		return 0
	}

	cfg, source := defaultConfig(), "built-in defaults"
	if *configPath != "" {
		var err error
		if cfg, err = loadConfig(*configPath); err != nil {
			printConfigErrors(stderr, *configPath, err)
			return 1
		}
		source = *configPath
	}
	if *logLevel != "" {
		if _, err := parseLevel(*logLevel); err != nil {
			fmt.Fprintf(stderr, "weir: -log-level: %v\n", err)
			return 2
		}
		cfg.Log.Level = *logLevel
	}
	if *logFormat != "" {
		if err := checkFormat(*logFormat); err != nil {
			fmt.Fprintf(stderr, "weir: -log-format: %v\n", err)
			return 2
		}
		cfg.Log.Format = *logFormat
	}
	logger := newLogger(stderr, cfg.Log)
	slog.SetDefault(logger)
	return serve(&cfg, source, keysInFile(*configPath), logger)
}

// printConfigErrors prints each problem of a configuration file on a line.
func printConfigErrors(w io.Writer, path string, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintf(w, "%s: %v\n", path, e)
	}
	if len(errs) > 1 {
		fmt.Fprintf(w, "%s: %d problems\n", path, len(errs))
	}
}

// newLogger returns a logger writing to w in the configured format and
// level, which must be valid.
func newLogger(w io.Writer, c logConfig) *slog.Logger {
	level, _ := parseLevel(c.Level)
	ho := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// serve runs the broker until a signal stops it and returns the exit code.
// set reports whether the configuration file sets a key (for the profile).
func serve(cfg *config, source string, set func(string) bool, log *slog.Logger) int {
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)

	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	log.Info("weir starting", "version", ver, "commit", rev, "config", source)
	if source == "built-in defaults" {
		log.Info("no -config file given: running with the built-in defaults")
	}
	profile := setupMemory(cfg, set, log)
	opts := cfg.options(log)
	sec, err := setupSecurity(cfg, &opts, log)
	if err != nil {
		log.Error("cannot load the TLS or auth files", "err", err)
		return 1
	}
	st, err := openStore(cfg, profile, log)
	if err != nil {
		log.Error("cannot open the store", "data_dir", cfg.DataDir, "err", err)
		return 1
	}
	if st != nil {
		opts.Store = st
		defer func() {
			if err := st.Close(); err != nil {
				log.Error("closing the store", "err", err)
			}
		}()
	}
	if opts.WSAddr == "-" {
		log.Info("websocket listener disabled")
	}
	srv, err := broker.New(&opts)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	// Bridges register their outboxes before the listeners accept
	// publishers, and stop before the server (bridge.go).
	bridges, err := bridge.Start(srv, cfg.bridgeConfigs(), log)
	if err != nil {
		log.Error("cannot start bridges", "err", err)
		srv.Close()
		return 1
	}
	defer bridges.Stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	releaseStartPagesLater()

	for {
		select {
		case err := <-errc:
			log.Error("cannot serve", "err", err)
			srv.Close()
			return 1
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				sec.reload(log) // logs what it did and why not
				continue
			}
			bridges.Stop()
			return shutdown(srv, sig, sigc, log)
		}
	}
}

// openStore opens the store the durability setting asks for: nil for
// "none" (the broker then keeps everything in memory).
func openStore(cfg *config, profile string, log *slog.Logger) (*badgerstore.Store, error) {
	if cfg.Durability == "none" {
		log.Info("storage is in memory (durability none): sessions, queued and retained messages are lost on restart")
		return nil, nil
	}
	d := badgerstore.Process
	if cfg.Durability == "sync" {
		d = badgerstore.Sync
	}
	// Open logs where the store is, how long opening took and what it
	// found.
	o := badgerstore.Options{Dir: cfg.DataDir, Durability: d, Logger: log, DiskReserve: int64(cfg.DiskReserve)}
	storeSizing(&o, profile, strconv.IntSize)
	return badgerstore.Open(o)
}

// shutdown stops srv gracefully within shutdownTimeout; another SIGINT or
// SIGTERM makes it return at once.
func shutdown(srv *broker.Server, sig os.Signal, sigc <-chan os.Signal, log *slog.Logger) int {
	log.Info("shutting down", "signal", sig.String(), "timeout", shutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	for {
		select {
		case err := <-done:
			code := 0
			if err != nil {
				log.Error("graceful shutdown did not finish; closing the remaining connections", "err", err)
				srv.Close()
				code = 1
			}
			st := srv.Stats()
			log.Info("stopped", "connections_total", st.ConnectionsTotal, "messages_received", st.MessagesReceived,
				"messages_out", st.MessagesOut)
			return code
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				continue
			}
			log.Warn("second signal: exiting now", "signal", sig.String())
			return 1
		}
	}
}
