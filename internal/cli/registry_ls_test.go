package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/auth"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func TestRegistryLs(t *testing.T) {
	isolateCredentials(t)
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret-pw"))
	push := []remote.Option{remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain)}

	entries, err := synth.Workload(7, 9, 512)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := synth.PushWorkload(entries, reg.Host, push...)
	if err != nil {
		t.Fatal(err)
	}
	// One repository with more tags than a page, to exercise tag paging.
	img, err := synth.Image(99)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		ref := fmt.Sprintf("%s/many/tags:t%d", reg.Host, i)
		if _, err := synth.Push(img, ref, push...); err != nil {
			t.Fatal(err)
		}
		pushed[ref] = ""
	}
	var want []string
	repos := map[string]bool{}
	for ref := range pushed {
		want = append(want, ref)
		repo := strings.TrimPrefix(ref[:strings.LastIndex(ref, ":")], reg.Host+"/")
		repos[repo] = true
	}
	sort.Strings(want)
	if len(repos) < 4 {
		t.Fatalf("workload too small to page: %d repositories", len(repos))
	}

	// The registry itself must answer the catalog API; say so plainly if it
	// does not, rather than failing on ls output below.
	req, err := reg.Request(http.MethodGet, "/v2/_catalog", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cat)
	resp.Body.Close()
	if err != nil || len(cat.Repositories) == 0 {
		t.Errorf("embedded registry: GET /v2/_catalog after pushing %d repositories returned %v (%v): "+
			"internal/registry must set config.Catalog.MaxEntries (distribution defaults it to 1000 only when parsing YAML)",
			len(repos), cat.Repositories, err)
	}

	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := auth.SetCredential(authFile, reg.Host, "alice", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	common := []string{"--ca-file", reg.CAFile, "-a", authFile, "--page-size", "2"}
	lines := func(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

	t.Run("tags lists exactly what was pushed, across pages", func(t *testing.T) {
		out, _, err := runCmd(t, newRegistryLsCommand, "", append([]string{reg.Host, "--tags"}, common...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got := lines(out); !reflect.DeepEqual(got, want) {
			t.Fatalf("registry ls --tags:\n got %v\nwant %v", got, want)
		}
	})

	t.Run("page size above the registry's limit", func(t *testing.T) {
		// distribution refuses n above its catalog maxentries (1000); ls
		// then lets the registry choose the page size.
		out, _, err := runCmd(t, newRegistryLsCommand, "", reg.Host, "--tags", "--ca-file", reg.CAFile, "-a", authFile, "--page-size", "100000")
		if err != nil {
			t.Fatal(err)
		}
		if got := lines(out); !reflect.DeepEqual(got, want) {
			t.Fatalf("registry ls --tags --page-size 100000:\n got %v\nwant %v", got, want)
		}
	})

	t.Run("repositories", func(t *testing.T) {
		out, _, err := runCmd(t, newRegistryLsCommand, "", append([]string{reg.Host}, common...)...)
		if err != nil {
			t.Fatal(err)
		}
		var wantRepos []string
		for r := range repos {
			wantRepos = append(wantRepos, reg.Host+"/"+r)
		}
		sort.Strings(wantRepos)
		if got := lines(out); !reflect.DeepEqual(got, wantRepos) {
			t.Fatalf("registry ls:\n got %v\nwant %v", got, wantRepos)
		}
	})

	t.Run("one repository as json", func(t *testing.T) {
		out, _, err := runCmd(t, newRegistryLsCommand, "", append([]string{reg.Host + "/many/tags", "-o", "json"}, common...)...)
		if err != nil {
			t.Fatal(err)
		}
		var res LsResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		wantRes := LsResult{Registry: reg.Host, Repositories: []LsRepository{{Name: "many/tags", Tags: []string{"t0", "t1", "t2", "t3", "t4"}}}}
		if !reflect.DeepEqual(res, wantRes) {
			t.Fatalf("got %+v, want %+v", res, wantRes)
		}
	})

	t.Run("namespace", func(t *testing.T) {
		out, _, err := runCmd(t, newRegistryLsCommand, "", append([]string{reg.Host + "/ns1", "--tags"}, common...)...)
		if err != nil {
			t.Fatal(err)
		}
		var wantNs []string
		for _, ref := range want {
			if strings.HasPrefix(ref, reg.Host+"/ns1/") {
				wantNs = append(wantNs, ref)
			}
		}
		if len(wantNs) == 0 {
			t.Fatal("workload has nothing under ns1")
		}
		if got := lines(out); !reflect.DeepEqual(got, wantNs) {
			t.Fatalf("got %v, want %v", got, wantNs)
		}
		if _, _, err := runCmd(t, newRegistryLsCommand, "", append([]string{reg.Host + "/nope"}, common...)...); err == nil || !strings.Contains(err.Error(), "no such repository") {
			t.Fatalf("unknown namespace: %v", err)
		}
	})

	t.Run("without credentials", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.json")
		if err := auth.SetCredential(empty, "unrelated.example", "x", "y"); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCmd(t, newRegistryLsCommand, "", reg.Host, "--ca-file", reg.CAFile, "-a", empty)
		if err == nil || !strings.Contains(err.Error(), "airlock login") {
			t.Fatalf("err = %v, want a hint to log in", err)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{reg.Host, "-o", "yaml"},
			{reg.Host, "--page-size", "0"},
			{"bad host!/x"},
			{reg.Host, "--ca-file", filepath.Join(t.TempDir(), "missing.crt")},
			{reg.Host, "-a", filepath.Join(t.TempDir(), "missing.json")},
		} {
			if _, _, err := runCmd(t, newRegistryLsCommand, "", args...); err == nil {
				t.Errorf("registry ls %v: want an error", args)
			}
		}
	})
}
