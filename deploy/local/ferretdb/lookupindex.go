package main

// FerretDB 1.24 on PostgreSQL keeps each collection in a table with one jsonb
// column, `_jsonb`, and sends a top-level equality filter `{f: v}` as
// `_jsonb->'f' @> v`. The indexes it creates for `_id` and for createIndexes
// are btree indexes on `(_jsonb->'f')`, which can serve `=`, `<` and `>` but
// never `@>` (upstream FerretDB issue #4646): out of the box every find scans
// its table. This file adds, next to each of them, an index that does serve
// the queries FerretDB sends:
//
//	CREATE INDEX ... USING gin ((_jsonb->'f') jsonb_path_ops) WITH (fastupdate = off)
//
// (without fastupdate = off, new entries wait in a pending list that every
// lookup reads through until autovacuum merges it: at 20,000 fresh documents a
// lookup of a missing `_id` took 22 ms instead of 0.8 ms)
//
// for `_id` and for every field of every index of every collection. It reads
// FerretDB's own metadata (one `_ferretdb_database_metadata` table per
// database schema, a row per collection naming its table and its indexes)
// and looks again whenever PostgreSQL's catalog shows that FerretDB created
// or dropped a table or an index in a schema.
//
// The GIN indexes live only in PostgreSQL: FerretDB's metadata does not list
// them (listIndexes shows what the services created), they are dropped with
// their table, and the documents themselves are never touched.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// lookupIndexPrefix starts the name of every index this file creates.
	lookupIndexPrefix = "permits_gin_"

	// metadataTable is FerretDB's per-schema table listing collections and indexes.
	metadataTable = "_ferretdb_database_metadata"
)

// catalogQuery lists, per FerretDB schema, every index on its tables.
const catalogQuery = `
SELECT n.nspname, ic.relname
FROM pg_catalog.pg_index AS x
JOIN pg_catalog.pg_class AS ic ON ic.oid = x.indexrelid
JOIN pg_catalog.pg_class AS t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.relnamespace
WHERE EXISTS (
  SELECT 1 FROM pg_catalog.pg_class AS m
  WHERE m.relnamespace = n.oid AND m.relname = '` + metadataTable + `' AND m.relkind = 'r'
)`

// schemaIndexes is what the catalog shows of one schema.
type schemaIndexes struct {
	ferretdb []string        // FerretDB's own indexes, sorted: their list is the schema's signature
	lookup   map[string]bool // the indexes this file created
}

// collectionMetadata is the part of a FerretDB metadata row used here.
type collectionMetadata struct {
	Name    string `json:"_id"`
	Table   string `json:"table"`
	Indexes []struct {
		PgIndex string         `json:"pgindex"`
		Key     map[string]any `json:"key"`
	} `json:"indexes"`
}

// keepLookupIndexes adds the missing lookup indexes until ctx ends. A pass in
// which nothing changed costs one catalog query.
func keepLookupIndexes(ctx context.Context, pgURL string, interval time.Duration, logger *slog.Logger) {
	config, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		logger.Error("lookup indexes: invalid PostgreSQL URL", "error", err)
		return
	}

	config.MaxConns = 1
	config.ConnConfig.RuntimeParams["application_name"] = "ferretdb-local lookup indexes"
	// The catalog query has no parameters: let PostgreSQL keep its plan rather than plan it
	// again every pass, as the URL's force_custom_plan would make it.
	config.ConnConfig.RuntimeParams["plan_cache_mode"] = "auto"

	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		logger.Error("lookup indexes: cannot create pool", "error", err)
		return
	}
	defer pool.Close()

	done := map[string]string{} // schema → signature of the FerretDB indexes already covered
	failing := false

	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	for {
		err := indexPass(ctx, pool, done, logger)

		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			logger.Warn("lookup index pass failed; retrying", "error", err)
			failing = true
		case err == nil && failing:
			logger.Info("lookup index pass works again")
			failing = false
		}

		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// indexPass reads the catalog and updates every schema whose FerretDB indexes
// changed since it was last covered.
func indexPass(ctx context.Context, pool *pgxpool.Pool, done map[string]string, logger *slog.Logger) error {
	schemas, err := readCatalog(ctx, pool)
	if err != nil {
		return err
	}

	for schema := range done {
		if _, ok := schemas[schema]; !ok {
			delete(done, schema)
		}
	}

	for schema, indexes := range schemas {
		signature := strings.Join(indexes.ferretdb, "\x00")
		if done[schema] == signature {
			continue
		}

		complete, err := indexSchema(ctx, pool, schema, indexes, logger)
		if err != nil {
			if isGone(err) {
				continue // dropped meanwhile
			}

			return fmt.Errorf("schema %q: %w", schema, err)
		}

		if complete {
			done[schema] = signature
		}
	}

	return nil
}

// readCatalog groups the indexes of FerretDB schemas by schema.
func readCatalog(ctx context.Context, pool *pgxpool.Pool) (map[string]*schemaIndexes, error) {
	rows, err := pool.Query(ctx, catalogQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	schemas := map[string]*schemaIndexes{}

	for rows.Next() {
		var schema, index string
		if err := rows.Scan(&schema, &index); err != nil {
			return nil, err
		}

		s := schemas[schema]
		if s == nil {
			s = &schemaIndexes{lookup: map[string]bool{}}
			schemas[schema] = s
		}

		if strings.HasPrefix(index, lookupIndexPrefix) {
			s.lookup[index] = true
		} else {
			s.ferretdb = append(s.ferretdb, index)
		}
	}

	if err := rows.Err(); err != nil {
		return nil, err
	}

	for _, s := range schemas {
		sort.Strings(s.ferretdb)
	}

	return schemas, nil
}

// indexSchema creates the lookup indexes one schema lacks. It reports whether
// FerretDB's metadata accounted for every FerretDB index the catalog showed:
// FerretDB creates an index before it records it, so an index seen but not
// yet recorded means "look again next pass".
func indexSchema(
	ctx context.Context, pool *pgxpool.Pool, schema string, indexes *schemaIndexes, logger *slog.Logger,
) (bool, error) {
	collections, err := readMetadata(ctx, pool, schema)
	if err != nil {
		return false, err
	}

	recorded := map[string]bool{}
	tables := map[string]bool{}

	for _, c := range collections {
		tables[c.Table] = true

		for _, index := range c.Indexes {
			recorded[index.PgIndex] = true
		}

		for _, field := range lookupFields(c) {
			name := lookupIndexName(c.Table, field)
			if indexes.lookup[name] {
				continue
			}

			q := fmt.Sprintf(
				`CREATE INDEX IF NOT EXISTS %s ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)`,
				pgx.Identifier{name}.Sanitize(),
				pgx.Identifier{schema, c.Table}.Sanitize(),
				fieldExpression(field),
			)

			if _, err := pool.Exec(ctx, q); err != nil {
				if isGone(err) {
					continue // the collection was dropped meanwhile
				}

				return false, fmt.Errorf("collection %q field %q: %w", c.Name, field, err)
			}

			logger.Debug("lookup index created", "schema", schema, "collection", c.Name, "field", field)
		}
	}

	complete := true

	for _, index := range indexes.ferretdb {
		if !recorded[index] && !strings.HasPrefix(index, metadataTable) {
			complete = false
		}
	}

	return complete, nil
}

// readMetadata reads FerretDB's metadata rows of one schema.
func readMetadata(ctx context.Context, pool *pgxpool.Pool, schema string) ([]collectionMetadata, error) {
	q := fmt.Sprintf(`SELECT _jsonb FROM %s`, pgx.Identifier{schema, metadataTable}.Sanitize())

	rows, err := pool.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var collections []collectionMetadata

	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}

		var c collectionMetadata
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("metadata row: %w", err)
		}

		if c.Table == "" {
			return nil, fmt.Errorf("metadata row of collection %q names no table", c.Name)
		}

		collections = append(collections, c)
	}

	return collections, rows.Err()
}

// lookupFields lists `_id` and every field of the collection's indexes, once each, sorted.
func lookupFields(c collectionMetadata) []string {
	fields := []string{"_id"}

	for _, index := range c.Indexes {
		for field := range index.Key {
			if !slices.Contains(fields, field) {
				fields = append(fields, field)
			}
		}
	}

	sort.Strings(fields)

	return fields
}

// lookupIndexName is a stable name, unique within the schema, short enough
// for PostgreSQL's 63-byte limit whatever the table and field names are.
func lookupIndexName(table, field string) string {
	sum := sha256.Sum256([]byte(table + "\x00" + field))
	return lookupIndexPrefix + hex.EncodeToString(sum[:10])
}

// fieldExpression is the expression FerretDB's filters use for the field:
// `_jsonb->'f'` for a top-level field, `_jsonb#>'{a,b}'` for a dotted path.
func fieldExpression(field string) string {
	parts := strings.Split(field, ".")
	if len(parts) == 1 {
		return "_jsonb->" + quoteLiteral(field)
	}

	quoted := make([]string, len(parts))
	for i, part := range parts {
		quoted[i] = quoteLiteral(part)
	}

	return "_jsonb#>ARRAY[" + strings.Join(quoted, ", ") + "]::text[]"
}

// quoteLiteral quotes a string as an SQL literal (standard_conforming_strings is on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// isGone tells whether an error says a schema or table no longer exists.
func isGone(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}

	return pgErr.Code == pgerrcode.UndefinedTable || pgErr.Code == pgerrcode.InvalidSchemaName
}
