package main

// FerretDB 1.24's SQLite backend answers `{_id: value}` with
// `WHERE _ferretdb_sjson->'$._id' = ?`, but the unique index it creates for
// `_id` is on `_ferretdb_sjson->"_id"`. SQLite only uses an expression index
// whose expression matches the query's exactly, so every lookup, update and
// delete by `_id` reads the whole table: 37 ms instead of 0.5 ms at 20,000
// documents on the development machine. The services are built around `_id`
// lookups (see docs/architecture.md), so this wrapper adds, to every collection
// table, a plain index on the very expression FerretDB queries with.
//
// The index lives only in SQLite: FerretDB's metadata does not list it, it is
// dropped with its table, and the documents themselves are never touched.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

const (
	pkIndexSuffix = "_permits_pk_lookup"
	pkExpression  = `_ferretdb_sjson->'$._id'`
)

// keepPrimaryKeyIndexes adds the lookup index to new tables until ctx ends.
// Tables appear when a collection gets its first document, so it looks again
// every interval; a pass over files with nothing to do costs well under 1 ms each.
func keepPrimaryKeyIndexes(ctx context.Context, dataDir string, interval time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	for {
		if err := indexAllDatabases(ctx, dataDir, logger); err != nil && ctx.Err() == nil {
			logger.Warn("primary key index pass failed", "error", err)
		}

		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// indexAllDatabases runs one pass over every database file in dataDir.
func indexAllDatabases(ctx context.Context, dataDir string, logger *slog.Logger) error {
	files, err := filepath.Glob(filepath.Join(dataDir, "*.sqlite"))
	if err != nil {
		return err
	}

	for _, file := range files {
		if ctx.Err() != nil {
			return nil
		}

		created, err := indexDatabase(ctx, file)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			logger.Warn("primary key index", "database", filepath.Base(file), "error", err)
			continue
		}

		for _, table := range created {
			logger.Debug("primary key index created", "database", filepath.Base(file), "table", table)
		}
	}

	return nil
}

// indexDatabase creates the missing lookup indexes of one database file and
// returns the tables it indexed. It opens the file only if it still exists, so
// a database dropped meanwhile is not recreated empty.
func indexDatabase(ctx context.Context, file string) ([]string, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, err
	}

	dsn := "file:" + file + "?mode=rw&_pragma=busy_timeout(10000)"

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()

	db.SetMaxOpenConns(1)

	missing, err := tablesWithoutLookupIndex(ctx, db)
	if err != nil {
		return nil, err
	}

	created := make([]string, 0, len(missing))

	for _, table := range missing {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, table+pkIndexSuffix, table, pkExpression)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue
			}
			return created, err
		}
		created = append(created, table)
	}

	return created, nil
}

// tablesWithoutLookupIndex lists collection tables (not FerretDB's own) that lack the index.
func tablesWithoutLookupIndex(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT t.name FROM sqlite_master AS t
		WHERE t.type = 'table'
		  AND t.name NOT LIKE '\_ferretdb\_%' ESCAPE '\'
		  AND NOT EXISTS (
		    SELECT 1 FROM sqlite_master AS i
		    WHERE i.type = 'index' AND i.tbl_name = t.name AND i.name = t.name || ?
		  )`, pkIndexSuffix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var tables []string

	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		tables = append(tables, name)
	}

	return tables, rows.Err()
}
