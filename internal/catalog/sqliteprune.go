package catalog

import (
	"context"
	"database/sql"
	"fmt"
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

// pruneBundles rewrites, in one transaction, every package of keep so that
// the database holds exactly keep's channels, heads, default channel and
// bundles. Channels are rebuilt entry by entry the way operator-registry
// lays them out (a head at depth 0, each skipped bundle as an extra entry
// pair, then the bundle it replaces one level deeper) from keep's channel
// entries, so a channel can lose bundles at either end. A kept bundle that
// replaces or skips a dropped one keeps that edge: the dropped bundle's
// entry stays, without its bundle row, which is what lets a cluster that
// runs it upgrade, and what makes every listing skip it. Bundles keep drops
// are deleted with their images, properties, dependencies and APIs.
// Packages keep does not hold are not touched here.
func pruneBundles(ctx context.Context, db *sql.DB, keep *declcfg.DeclarativeConfig) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	schema, err := readSchema(ctx, tx)
	if err != nil {
		return fmt.Errorf("reading schema: %w", err)
	}
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
	for _, p := range keep.Packages {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := rebuildPackage(ctx, tx, schema, p, channels[p.Name], kept[p.Name]); err != nil {
			return fmt.Errorf("package %s: %w", p.Name, err)
		}
	}
	return tx.Commit()
}

func rebuildPackage(ctx context.Context, tx *sql.Tx, schema sqliteSchema, p declcfg.Package, chans []declcfg.Channel, kept map[string]bool) error {
	members, err := packageBundles(ctx, tx, schema, p.Name)
	if err != nil {
		return fmt.Errorf("listing bundles: %w", err)
	}
	for b := range kept {
		if !members[b] {
			return fmt.Errorf("bundle %s of the filtered catalog is not in the database", b)
		}
	}
	apis := map[string]*entryAPIs{}
	if schema.apisByEntry {
		if apis, err = readEntryAPIs(ctx, tx, p.Name); err != nil {
			return fmt.Errorf("reading APIs: %w", err)
		}
	}
	if err := clearChannels(ctx, tx, schema, p.Name); err != nil {
		return err
	}
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
	var dropped []string
	for b := range members {
		if !kept[b] {
			dropped = append(dropped, b)
		}
	}
	sort.Strings(dropped)
	for _, b := range dropped {
		if err := deleteBundle(ctx, tx, schema, b); err != nil {
			return fmt.Errorf("deleting bundle %s: %w", b, err)
		}
	}
	return nil
}

// clearChannels deletes the channels and channel entries of pkg and unsets
// its default channel.
func clearChannels(ctx context.Context, tx *sql.Tx, schema sqliteSchema, pkg string) error {
	// The package row references its default channel with a cascading
	// foreign key: unset it before the channels go, or the package goes too.
	if _, err := tx.ExecContext(ctx, `UPDATE package SET default_channel = NULL WHERE name = ?`, pkg); err != nil {
		return err
	}
	if schema.apisByEntry {
		// Entry ids are reused once freed: drop the package's entry-linked
		// API rows explicitly rather than trusting the cascade.
		for _, t := range []string{"api_provider", "api_requirer"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE channel_entry_id IN (SELECT entry_id FROM channel_entry WHERE package_name = ?)`, pkg); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM channel_entry WHERE package_name = ?`, pkg); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM channel WHERE package_name = ?`, pkg)
	return err
}

// removePackages deletes every package of the database that keep does
// not hold, with its channels and bundles, in one transaction. It works
// on every schema operator-registry ever wrote (its own RemovePackage
// needs the deprecated table of schema 12), so an old catalog image's
// database keeps the schema its opm understands. It returns the removed
// packages, sorted.
func removePackages(ctx context.Context, db *sql.DB, keep map[string]bool) ([]string, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	schema, err := readSchema(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT name FROM package ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var all []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, p := range all {
		have[p] = true
	}
	var missing []string
	for p := range keep {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("package(s) %s of the filtered catalog are not in the database", strings.Join(missing, ", "))
	}
	var removed []string
	for _, p := range all {
		if keep[p] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		members, err := packageBundles(ctx, tx, schema, p)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", p, err)
		}
		if err := clearChannels(ctx, tx, schema, p); err != nil {
			return nil, fmt.Errorf("package %s: %w", p, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM package WHERE name = ?`, p); err != nil {
			return nil, fmt.Errorf("package %s: %w", p, err)
		}
		for b := range members {
			if err := deleteBundle(ctx, tx, schema, b); err != nil {
				return nil, fmt.Errorf("package %s: deleting bundle %s: %w", p, b, err)
			}
		}
		removed = append(removed, p)
	}
	return removed, tx.Commit()
}

// packageBundles lists the bundles of pkg that have a row: those in its
// channels, and (schemas with properties) those whose olm.package property
// names it, which finds deprecated bundles that left every channel.
func packageBundles(ctx context.Context, tx *sql.Tx, schema sqliteSchema, pkg string) (map[string]bool, error) {
	q := `SELECT DISTINCT ce.operatorbundle_name FROM channel_entry ce
		JOIN operatorbundle ob ON ob.name = ce.operatorbundle_name WHERE ce.package_name = ?`
	args := []any{pkg}
	if schema.tables["properties"] {
		q += ` UNION SELECT DISTINCT pr.operatorbundle_name FROM properties pr
		JOIN operatorbundle ob ON ob.name = pr.operatorbundle_name
		WHERE pr.type = 'olm.package' AND json_extract(pr.value, '$.packageName') = ?`
		args = append(args, pkg)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

func readEntryAPIs(ctx context.Context, tx *sql.Tx, pkg string) (map[string]*entryAPIs, error) {
	out := map[string]*entryAPIs{}
	for _, table := range []string{"api_provider", "api_requirer"} {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT a.group_name, a.version, a.kind, ce.operatorbundle_name
			FROM `+table+` a JOIN channel_entry ce ON a.channel_entry_id = ce.entry_id
			WHERE ce.package_name = ? ORDER BY 4, 1, 2, 3`, pkg)
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

// deleteBundle removes a bundle's row and everything hanging off it, but
// not its channel entries: an entry of a dropped bundle that a kept bundle
// replaces or skips is the upgrade edge from it.
func deleteBundle(ctx context.Context, tx *sql.Tx, schema sqliteSchema, name string) error {
	stmts := []string{`DELETE FROM operatorbundle WHERE name = ?`}
	for _, t := range []string{"related_image", "properties", "dependencies", "deprecated"} {
		if schema.tables[t] {
			stmts = append(stmts, `DELETE FROM `+t+` WHERE operatorbundle_name = ?`)
		}
	}
	if !schema.apisByEntry {
		stmts = append(stmts, `DELETE FROM api_provider WHERE operatorbundle_name = ?`, `DELETE FROM api_requirer WHERE operatorbundle_name = ?`)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s, name); err != nil {
			return err
		}
	}
	return nil
}
