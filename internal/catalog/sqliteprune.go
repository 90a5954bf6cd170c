package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// startDepth is the depth of a channel head's entry. operator-registry's
// bundle listing takes the smallest depth of the whole channel_entry table
// as "the heads", so every channel's head must sit at this same depth.
const startDepth = 0

// sqliteSchema says which optional parts of operator-registry's schema a
// database has: the schema changed over the years and an old catalog
// image's opm only understands the one it was built with, so pruning edits
// the database in its own schema rather than migrating it.
type sqliteSchema struct {
	// apisByEntry: api_provider/api_requirer rows point at channel entries
	// (schemas before migration 006) rather than at bundles.
	apisByEntry bool
	// Tables holding per-bundle rows that a deleted bundle must not leave
	// behind.
	tables map[string]bool
}

func readSchema(ctx context.Context, tx *sql.Tx) (sqliteSchema, error) {
	s := sqliteSchema{tables: map[string]bool{}}
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type='table'`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return s, err
		}
		s.tables[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}
	cols, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info('api_provider')`)
	if err != nil {
		return s, err
	}
	defer cols.Close()
	for cols.Next() {
		var n string
		if err := cols.Scan(&n); err != nil {
			return s, err
		}
		s.apisByEntry = s.apisByEntry || n == "channel_entry_id"
	}
	return s, cols.Err()
}

// gvk is one row of api_provider or api_requirer in an entry-linked schema.
type gvk struct{ group, version, kind string }

// entryAPIs are the APIs one bundle provides and requires, read before its
// channel entries are rebuilt (old schemas attach them to entries).
type entryAPIs struct{ provided, required []gvk }

// pruneDatabase prunes db to keep in one transaction. Packages keep does
// not hold are removed with their channels and bundles. With exact, every
// package of keep is also rewritten so that the database holds exactly
// keep's channels, heads, default channel and bundles: channels are rebuilt
// entry by entry the way operator-registry lays them out (a head at depth
// 0, each skipped bundle as an extra entry pair, then the bundle it replaces
// one level deeper) from keep's channel entries, so a channel can lose
// bundles at either end. A kept bundle that replaces or skips a dropped one
// keeps that edge: the dropped bundle's entry stays, without its bundle
// row, which is what lets a cluster that runs it upgrade, and what makes
// every listing skip it. Dropped bundles are deleted with their images,
// properties, dependencies and APIs. The SQL works on every schema
// operator-registry ever wrote (its own RemovePackage needs the deprecated
// table of schema 12), so an old catalog image's database keeps the schema
// its opm understands. Deletes are set-based: per-row deletes scan the
// per-bundle tables (which have no index) once per bundle. It returns the
// removed packages, sorted.
func pruneDatabase(ctx context.Context, db *sql.DB, keep *declcfg.DeclarativeConfig, exact bool) ([]string, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	schema, err := readSchema(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	members, err := bundlesByPackage(ctx, tx, schema)
	if err != nil {
		return nil, fmt.Errorf("listing bundles: %w", err)
	}
	all, err := queryNames(ctx, tx, `SELECT name FROM package ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing packages: %w", err)
	}
	want := map[string]bool{}
	for _, p := range keep.Packages {
		want[p.Name] = true
	}
	have := map[string]bool{}
	for _, p := range all {
		have[p] = true
	}
	var missing, removed, dropped []string
	for _, p := range keep.Packages {
		if !have[p.Name] {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("package(s) %s of the filtered catalog are not in the database", strings.Join(missing, ", "))
	}
	for _, p := range all {
		if !want[p] {
			removed = append(removed, p)
			for b := range members[p] {
				dropped = append(dropped, b)
			}
		}
	}
	if err := fillNames(ctx, tx, "pkg", removed); err != nil {
		return nil, err
	}
	if err := clearChannels(ctx, tx, schema); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM package WHERE name IN (SELECT name FROM temp.airlock_names WHERE kind = 'pkg')`); err != nil {
		return nil, err
	}
	if exact {
		kept := map[string]map[string]bool{} // package -> bundles
		for _, b := range keep.Bundles {
			if kept[b.Package] == nil {
				kept[b.Package] = map[string]bool{}
			}
			kept[b.Package][b.Name] = true
		}
		channels := map[string][]declcfg.Channel{}
		for _, ch := range keep.Channels {
			channels[ch.Package] = append(channels[ch.Package], ch)
		}
		if err := fillNames(ctx, tx, "pkg", slices.Sorted(maps.Keys(want))); err != nil {
			return nil, err
		}
		var apis map[string]*entryAPIs
		if schema.apisByEntry {
			if apis, err = readEntryAPIs(ctx, tx); err != nil {
				return nil, fmt.Errorf("reading APIs: %w", err)
			}
		}
		if err := clearChannels(ctx, tx, schema); err != nil {
			return nil, err
		}
		for _, p := range keep.Packages {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for b := range kept[p.Name] {
				if !members[p.Name][b] {
					return nil, fmt.Errorf("package %s: bundle %s of the filtered catalog is not in the database", p.Name, b)
				}
			}
			if err := rebuildPackage(ctx, tx, p, channels[p.Name], apis); err != nil {
				return nil, fmt.Errorf("package %s: %w", p.Name, err)
			}
			for b := range members[p.Name] {
				if !kept[p.Name][b] {
					dropped = append(dropped, b)
				}
			}
		}
	}
	sort.Strings(dropped)
	if err := withoutAPITriggers(ctx, tx, func() error { return deleteBundles(ctx, tx, schema, dropped) }); err != nil {
		return nil, fmt.Errorf("deleting bundles: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE temp.airlock_names`); err != nil {
		return nil, err
	}
	return removed, tx.Commit()
}

// withoutAPITriggers runs fn with the schema's triggers on api_provider and
// api_requirer dropped, then removes the api rows nothing refers to any
// more (what those triggers do, row by row) and puts the triggers back
// exactly as they were, all inside tx. Each trigger run joins both tables
// in full: deleting the API rows of 2000 bundles took 11 s with them and
// takes milliseconds this way.
func withoutAPITriggers(ctx context.Context, tx *sql.Tx, fn func() error) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('api_provider', 'api_requirer') ORDER BY name`)
	if err != nil {
		return err
	}
	type trigger struct{ name, sql string }
	var triggers []trigger
	for rows.Next() {
		var tr trigger
		if err := rows.Scan(&tr.name, &tr.sql); err != nil {
			rows.Close()
			return err
		}
		triggers = append(triggers, tr)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, tr := range triggers {
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER "`+strings.ReplaceAll(tr.name, `"`, `""`)+`"`); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		return err
	}
	if len(triggers) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api WHERE
		NOT EXISTS (SELECT 1 FROM api_provider p WHERE p.group_name = api.group_name AND p.version = api.version AND p.kind = api.kind) AND
		NOT EXISTS (SELECT 1 FROM api_requirer r WHERE r.group_name = api.group_name AND r.version = api.version AND r.kind = api.kind)`); err != nil {
		return err
	}
	for _, tr := range triggers {
		if _, err := tx.ExecContext(ctx, tr.sql); err != nil {
			return fmt.Errorf("restoring trigger %s: %w", tr.name, err)
		}
	}
	return nil
}

// fillNames replaces the names of kind in the temporary table the
// set-based statements join against.
func fillNames(ctx context.Context, tx *sql.Tx, kind string, names []string) error {
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS airlock_names(kind TEXT, name TEXT, PRIMARY KEY(kind, name))`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM temp.airlock_names WHERE kind = ?`, kind); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO temp.airlock_names(kind, name) VALUES(?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, n := range names {
		if _, err := stmt.ExecContext(ctx, kind, n); err != nil {
			return err
		}
	}
	return nil
}

func queryNames(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// rebuildPackage writes the channels of p (cleared before) from chans and
// sets its default channel.
func rebuildPackage(ctx context.Context, tx *sql.Tx, p declcfg.Package, chans []declcfg.Channel, apis map[string]*entryAPIs) error {
	sort.Slice(chans, func(i, j int) bool { return chans[i].Name < chans[j].Name })
	heads := map[string]string{}
	for _, ch := range chans {
		head, err := channelHead(ch)
		if err != nil {
			return err
		}
		heads[ch.Name] = head
		if _, err := tx.ExecContext(ctx, `INSERT INTO channel(name, package_name, head_operatorbundle_name) VALUES(?, ?, ?)`, ch.Name, p.Name, head); err != nil {
			return fmt.Errorf("channel %s: %w", ch.Name, err)
		}
	}
	if _, ok := heads[p.DefaultChannel]; !ok {
		return fmt.Errorf("default channel %q is not among the kept channels", p.DefaultChannel)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE package SET default_channel = ? WHERE name = ?`, p.DefaultChannel, p.Name); err != nil {
		return err
	}
	for _, ch := range chans {
		if err := writeChannel(ctx, tx, p.Name, ch, heads[ch.Name], apis); err != nil {
			return fmt.Errorf("channel %s: %w", ch.Name, err)
		}
	}
	return nil
}

// clearChannels deletes the channels and channel entries of the packages
// named "pkg" in the temporary table, and unsets their default channel.
func clearChannels(ctx context.Context, tx *sql.Tx, schema sqliteSchema) error {
	const pkgs = `(SELECT name FROM temp.airlock_names WHERE kind = 'pkg')`
	// The package row references its default channel with a cascading
	// foreign key: unset it before the channels go, or the package goes too.
	stmts := []string{`UPDATE package SET default_channel = NULL WHERE name IN ` + pkgs}
	if schema.apisByEntry {
		// Entry ids are reused once freed: drop the entry-linked API rows
		// explicitly rather than trusting the cascade.
		for _, t := range []string{"api_provider", "api_requirer"} {
			stmts = append(stmts, `DELETE FROM `+t+` WHERE channel_entry_id IN (SELECT entry_id FROM channel_entry WHERE package_name IN `+pkgs+`)`)
		}
	}
	stmts = append(stmts, `DELETE FROM channel_entry WHERE package_name IN `+pkgs, `DELETE FROM channel WHERE package_name IN `+pkgs)
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// bundlesByPackage lists, per package, the bundles that have a row: those
// in its channels, and (schemas with properties) those whose olm.package
// property names it, which finds deprecated bundles that left every
// channel.
func bundlesByPackage(ctx context.Context, tx *sql.Tx, schema sqliteSchema) (map[string]map[string]bool, error) {
	q := `SELECT DISTINCT ce.package_name, ce.operatorbundle_name FROM channel_entry ce
		JOIN operatorbundle ob ON ob.name = ce.operatorbundle_name`
	if schema.tables["properties"] {
		q += ` UNION SELECT DISTINCT json_extract(pr.value, '$.packageName'), pr.operatorbundle_name FROM properties pr
		JOIN operatorbundle ob ON ob.name = pr.operatorbundle_name WHERE pr.type = 'olm.package'`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var pkg sql.NullString
		var b string
		if err := rows.Scan(&pkg, &b); err != nil {
			return nil, err
		}
		if out[pkg.String] == nil {
			out[pkg.String] = map[string]bool{}
		}
		out[pkg.String][b] = true
	}
	return out, rows.Err()
}

// readEntryAPIs reads, for the bundles of the packages named "pkg" in the
// temporary table, the APIs their entries carry (entry-linked schemas).
func readEntryAPIs(ctx context.Context, tx *sql.Tx) (map[string]*entryAPIs, error) {
	out := map[string]*entryAPIs{}
	for _, table := range []string{"api_provider", "api_requirer"} {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT a.group_name, a.version, a.kind, ce.operatorbundle_name
			FROM `+table+` a JOIN channel_entry ce ON a.channel_entry_id = ce.entry_id
			WHERE ce.package_name IN (SELECT name FROM temp.airlock_names WHERE kind = 'pkg') ORDER BY 4, 1, 2, 3`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var g gvk
			var bundle string
			if err := rows.Scan(&g.group, &g.version, &g.kind, &bundle); err != nil {
				rows.Close()
				return nil, err
			}
			a := out[bundle]
			if a == nil {
				a = &entryAPIs{}
				out[bundle] = a
			}
			if table == "api_provider" {
				a.provided = append(a.provided, g)
			} else {
				a.required = append(a.required, g)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// channelHead is the one entry no other entry of ch replaces or skips
// (skipRange does not count, as in operator-registry's model).
func channelHead(ch declcfg.Channel) (string, error) {
	under := map[string]bool{}
	for _, e := range ch.Entries {
		if e.Replaces != "" {
			under[e.Replaces] = true
		}
		for _, s := range e.Skips {
			under[s] = true
		}
	}
	var heads []string
	for _, e := range ch.Entries {
		if !under[e.Name] {
			heads = append(heads, e.Name)
		}
	}
	if len(heads) != 1 {
		return "", fmt.Errorf("channel %s has %d heads %v, want exactly one", ch.Name, len(heads), heads)
	}
	return heads[0], nil
}

// writeChannel inserts ch's entries walking the replaces chain down from
// head, as operator-registry does when it adds a package: each bundle's
// skips become a pair (the skipped bundle, and a second entry of the
// bundle replacing it) one level down, then the bundle it replaces comes
// one level further down. The walk stops below the last kept bundle,
// after writing the entry of a dropped bundle it replaces.
func writeChannel(ctx context.Context, tx *sql.Tx, pkg string, ch declcfg.Channel, head string, apis map[string]*entryAPIs) error {
	byName := map[string]declcfg.ChannelEntry{}
	for _, e := range ch.Entries {
		byName[e.Name] = e
	}
	placed := map[string]bool{}
	insert := func(bundle string, depth int, real bool) (int64, error) {
		res, err := tx.ExecContext(ctx, `INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, depth) VALUES(?, ?, ?, ?)`,
			ch.Name, pkg, bundle, depth)
		if err != nil {
			return 0, err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return 0, err
		}
		if _, ok := byName[bundle]; ok {
			placed[bundle] = true
		}
		// Entry-linked APIs hang off every entry written for the bundle
		// itself (not off the entries of bundles it skips or drops).
		if a := apis[bundle]; a != nil && real {
			for _, g := range a.provided {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO api_provider(group_name, version, kind, channel_entry_id) VALUES(?, ?, ?, ?)`, g.group, g.version, g.kind, id); err != nil {
					return 0, err
				}
			}
			for _, g := range a.required {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO api_requirer(group_name, version, kind, channel_entry_id) VALUES(?, ?, ?, ?)`, g.group, g.version, g.kind, id); err != nil {
					return 0, err
				}
			}
		}
		return id, nil
	}
	link := func(id, replaces int64) error {
		_, err := tx.ExecContext(ctx, `UPDATE channel_entry SET replaces = ? WHERE entry_id = ?`, replaces, id)
		return err
	}
	cur := head
	curID, err := insert(cur, startDepth, true)
	if err != nil {
		return err
	}
	depth := startDepth + 1
	seen := map[string]bool{cur: true}
	for {
		e := byName[cur]
		for _, s := range e.Skips {
			skipped, err := insert(s, depth, false)
			if err != nil {
				return err
			}
			again, err := insert(cur, depth, true)
			if err != nil {
				return err
			}
			if err := link(again, skipped); err != nil {
				return err
			}
			depth++
		}
		if e.Replaces == "" {
			break
		}
		_, keptBelow := byName[e.Replaces]
		next, err := insert(e.Replaces, depth, keptBelow)
		if err != nil {
			return err
		}
		if err := link(curID, next); err != nil {
			return err
		}
		if !keptBelow {
			break
		}
		if seen[e.Replaces] {
			return fmt.Errorf("replaces cycle at %s", e.Replaces)
		}
		seen[e.Replaces] = true
		cur, curID = e.Replaces, next
		depth++
	}
	for _, e := range ch.Entries {
		if !placed[e.Name] {
			return fmt.Errorf("bundle %s is neither on the replaces chain from %s nor skipped by it, which a sqlite catalog cannot express", e.Name, head)
		}
	}
	return nil
}

// deleteBundles removes the rows of the named bundles and everything
// hanging off them, but not their channel entries: an entry of a dropped
// bundle that a kept bundle replaces or skips is the upgrade edge from it.
func deleteBundles(ctx context.Context, tx *sql.Tx, schema sqliteSchema, names []string) error {
	if err := fillNames(ctx, tx, "bundle", names); err != nil {
		return err
	}
	const set = `(SELECT name FROM temp.airlock_names WHERE kind = 'bundle')`
	stmts := []string{`DELETE FROM operatorbundle WHERE name IN ` + set}
	for _, t := range []string{"related_image", "properties", "dependencies", "deprecated"} {
		if schema.tables[t] {
			stmts = append(stmts, `DELETE FROM `+t+` WHERE operatorbundle_name IN `+set)
		}
	}
	if !schema.apisByEntry {
		stmts = append(stmts, `DELETE FROM api_provider WHERE operatorbundle_name IN `+set, `DELETE FROM api_requirer WHERE operatorbundle_name IN `+set)
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
