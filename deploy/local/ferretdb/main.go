// Command ferretdb-local runs an embedded FerretDB with the PostgreSQL backend.
//
// It exists because `go install .../cmd/ferretdb` builds a binary that panics
// at start (missing version.txt); the embeddable ferretdb package does not need
// it. The embedded package never starts the telemetry reporter and marks
// telemetry as disabled, so the server makes no outbound network calls.
//
// Besides starting FerretDB it makes two settings explicit on the PostgreSQL
// URL (see lookupindex.go for why both matter to index use) and keeps GIN
// lookup indexes on every collection (lookupindex.go).
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
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	postgresqlURL := flag.String("postgresql-url", "postgres://postgres@127.0.0.1:5433/ferretdb",
		"PostgreSQL database FerretDB keeps its data in")
	poolMaxConns := flag.Int("pool-max-conns", 100,
		"PostgreSQL connections FerretDB may open, unless the URL sets pool_max_conns")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	indexInterval := flag.Duration("index-interval", 500*time.Millisecond,
		"how often to add the GIN lookup indexes to new collections and indexes (see lookupindex.go); 0 turns it off")
	gcPercent := flag.Int("gc-percent", defaultGCPercent,
		"Go's GOGC for the server, unless the GOGC environment variable is set (see defaultGCPercent)")
	debugAddr := flag.String("debug-addr", "",
		"loopback address serving Go's profiles (net/http/pprof, see debug.go); empty (the default) turns it off")
	flag.Parse()

	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}

	if err := run(*listenAddr, *postgresqlURL, *poolMaxConns, *logLevel, *indexInterval, *debugAddr); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-local:", err)
		os.Exit(1)
	}
}

// defaultGCPercent lets the heap grow to five times what is live before Go
// collects it (Go's default, 100, is twice). FerretDB's live heap is small
// (tens of MB) and it allocates a lot for every command (BSON to its own
// types to JSON and back), so at the default the collector ran so often that
// it took about a fifth of the server's CPU in the pipeline benchmark; the
// cost is a few tens of MB more memory.
const defaultGCPercent = 400

// run starts FerretDB and blocks until SIGTERM or SIGINT, then shuts down cleanly.
func run(
	listenAddr, postgresqlURL string, poolMaxConns int, logLevel string, indexInterval time.Duration, debugAddr string,
) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("invalid -log-level %q: %w", logLevel, err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	pgURL, err := withQuerySettings(postgresqlURL, poolMaxConns)
	if err != nil {
		return err
	}

	logger.Info("ferretdb-local starting", "listen", listenAddr, "postgresql", redacted(pgURL))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if debugAddr != "" {
		if err := checkDebugAddr(debugAddr); err != nil {
			return err
		}

		if err := serveDebug(ctx, debugAddr, logger); err != nil {
			return err
		}
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: listenAddr},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: pgURL,
	})
	if err != nil {
		return err
	}

	if indexInterval > 0 {
		go keepLookupIndexes(ctx, pgURL, indexInterval, logger)
	}

	if err := f.Run(ctx); err != nil {
		return err
	}

	logger.Info("ferretdb-local stopped")

	return nil
}

// withQuerySettings returns the URL with `plan_cache_mode=force_custom_plan`
// (a session setting pgx sends at connect) and `pool_max_conns`, unless the
// URL already sets them.
//
// FerretDB sends every filter as `_jsonb->$1 @> $2` through pgx's cached
// prepared statements; after five executions PostgreSQL may switch to a
// generic plan, in which `_jsonb->$1` matches no index expression, so every
// lookup would scan. The pool size is explicit because FerretDB keeps the
// query of every statement of an update command open until the command ends:
// a pool smaller than a command's statements waits for itself.
func withQuerySettings(raw string, poolMaxConns int) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid -postgresql-url: %w", err)
	}

	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("invalid -postgresql-url: scheme %q, want postgres://", u.Scheme)
	}

	if poolMaxConns < 1 {
		return "", fmt.Errorf("invalid -pool-max-conns %d: want at least 1", poolMaxConns)
	}

	q := u.Query()

	if !q.Has("plan_cache_mode") {
		q.Set("plan_cache_mode", "force_custom_plan")
	}

	if !q.Has("pool_max_conns") {
		q.Set("pool_max_conns", strconv.Itoa(poolMaxConns))
	}

	u.RawQuery = q.Encode()

	return u.String(), nil
}

// redacted hides a password for the log.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}

	return u.Redacted()
}
