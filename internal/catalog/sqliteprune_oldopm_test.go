package catalog

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/testutil/oldopm"
)

// TestPrunedSQLiteServedByOldOpm serves every pruned database of pruneCases
// with the opm of an OpenShift 4.7 catalog image (v1.16.1, sqlite only,
// built from source) and asks it over gRPC what OLM asks: the packages,
// each package's default channel and channel heads, every bundle of every
// channel, and the upgrade edges — including from bundles the pruning
// dropped, which clusters may still run.
func TestPrunedSQLiteServedByOldOpm(t *testing.T) {
	ctx := context.Background()
	oldopm.Binary(t) // build once, before the subtests time their servers
	for _, tc := range pruneCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadSQLite(ctx, testdata(t, tc.db...))
			if err != nil {
				t.Fatal(err)
			}
			f, _, err := Filter(ctx, c, imageset.Operator{Packages: tc.pkgs, SkipDependencies: true})
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "index.db")
			if _, err := PruneSQLite(ctx, testdata(t, tc.db...), dst, f); err != nil {
				t.Fatal(err)
			}
			srv := oldopm.Serve(t, dst)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf(format+"\nopm log:\n%s", append(args, srv.Log())...)
			}

			pkgs, err := srv.Packages()
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(pkgs)
			if got, want := strings.Join(pkgs, ","), strings.Join(f.PackageNames(), ","); got != want {
				fail("packages %s, want %s", got, want)
			}
			heads := map[string]string{} // package/channel -> head
			members := map[string][]string{}
			for k, v := range tc.channels {
				head, list, _ := strings.Cut(v, ": ")
				heads[k] = head
				members[k] = strings.Split(list, ",")
			}
			for _, p := range f.Config.Packages {
				def, chans, err := srv.Package(p.Name)
				if err != nil {
					fail("package %s: %v", p.Name, err)
					continue
				}
				if def != p.DefaultChannel {
					fail("package %s: default channel %s, want %s", p.Name, def, p.DefaultChannel)
				}
				n := 0
				for k := range heads {
					if strings.HasPrefix(k, p.Name+"/") {
						n++
					}
				}
				if len(chans) != n {
					fail("package %s: channels %v, want %d", p.Name, chans, n)
				}
				for ch, head := range chans {
					if heads[p.Name+"/"+ch] != head {
						fail("%s/%s: head %s, want %s", p.Name, ch, head, heads[p.Name+"/"+ch])
					}
					b, err := srv.BundleForChannel(p.Name, ch)
					if err != nil || b.CSVName != head {
						fail("%s/%s: bundle for channel %s %v, want %s", p.Name, ch, b.CSVName, err, head)
					}
				}
			}
			rows, err := srv.Bundles()
			if err != nil {
				t.Fatal(err)
			}
			listed := map[string][]string{}
			for _, r := range rows {
				k := r.PackageName + "/" + r.ChannelName
				listed[k] = append(listed[k], r.CSVName)
			}
			if len(listed) != len(members) {
				fail("ListBundles channels %v, want %v", listed, members)
			}
			for k, want := range members {
				got := listed[k]
				sort.Strings(got)
				if strings.Join(got, ",") != strings.Join(want, ",") {
					fail("ListBundles %s: %v, want %v", k, got, want)
				}
			}
			for _, u := range tc.upgrades {
				b, err := srv.BundleThatReplaces(u[0], u[1], u[2])
				if err != nil || b.CSVName != u[3] {
					fail("upgrade from %s in %s/%s: %q %v, want %s", u[0], u[1], u[2], b.CSVName, err, u[3])
				}
			}
			for _, p := range c.PackageNames() {
				if strings.Contains(","+strings.Join(f.PackageNames(), ",")+",", ","+p+",") {
					continue
				}
				if _, _, err := srv.Package(p); !oldopm.IsNotFound(err) {
					fail("removed package %s: %v, want not found", p, err)
				}
			}
		})
	}
}
