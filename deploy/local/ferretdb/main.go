// Command ferretdb-local runs an embedded FerretDB with the SQLite backend.
//
// It exists because `go install .../cmd/ferretdb` builds a binary that panics
// at start (missing version.txt); the embeddable ferretdb package does not need
// it. The embedded package never starts the telemetry reporter and marks
// telemetry as disabled, so the server makes no outbound network calls.
//
// Used only for local development and tests, via deploy/local/infra.py.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "data", "directory for the SQLite database files")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	indexInterval := flag.Duration("pk-index-interval", 500*time.Millisecond,
		"how often to add the _id lookup index to new collection tables (see pkindex.go); 0 turns it off")
	flag.Parse()

	if err := run(*listenAddr, *dataDir, *logLevel, *indexInterval); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-local:", err)
		os.Exit(1)
	}
}

// run starts FerretDB and blocks until SIGTERM or SIGINT, then shuts down cleanly.
func run(listenAddr, dataDir, logLevel string, indexInterval time.Duration) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("invalid -log-level %q: %w", logLevel, err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	absDataDir, sqliteURL, err := sqliteDirURL(dataDir)
	if err != nil {
		return err
	}

	logger.Info("ferretdb-local starting", "listen", listenAddr, "sqlite", sqliteURL)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listenAddr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	if indexInterval > 0 {
		go keepPrimaryKeyIndexes(ctx, absDataDir, indexInterval, logger)
	}

	if err := f.Run(ctx); err != nil {
		return err
	}

	logger.Info("ferretdb-local stopped")

	return nil
}

// sqliteDirURL creates dataDir if needed and returns its absolute path and the
// "file:<dir>/" URI that the SQLite backend requires (it rejects relative or
// non-directory paths).
func sqliteDirURL(dataDir string) (string, string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", "", fmt.Errorf("resolving -data-dir: %w", err)
	}

	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", "", fmt.Errorf("creating -data-dir: %w", err)
	}

	u := url.URL{Scheme: "file", Path: abs + "/", OmitHost: true}

	return abs, u.String(), nil
}
