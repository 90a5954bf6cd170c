package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSetAndRemoveCredentialPreservesOtherEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "auth.json")
	orig := `{
  "auths": {
    "keep.example": {"auth": "a2VlcDprZWVw"},
    "https://reg.example:5000": {"auth": "b2xkOm9sZA=="}
  },
  "credHelpers": {"gcr.io": "gcloud"},
  "unknownField": {"x": [1, 2]}
}`
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := SetCredential(path, NormalizeLoginKey("https://reg.example:5000/"), "new", "newpw"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	var doc struct {
		Auths        map[string]map[string]string `json:"auths"`
		CredHelpers  map[string]string            `json:"credHelpers"`
		UnknownField map[string][]int             `json:"unknownField"`
	}
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("written file is not JSON: %v\n%s", err, data)
	}
	wantAuths := map[string]map[string]string{
		"keep.example":     {"auth": "a2VlcDprZWVw"},
		"reg.example:5000": {"auth": "bmV3Om5ld3B3"}, // new:newpw; the https:// spelling is replaced
	}
	if !reflect.DeepEqual(doc.Auths, wantAuths) {
		t.Errorf("auths = %v, want %v", doc.Auths, wantAuths)
	}
	if doc.CredHelpers["gcr.io"] != "gcloud" || !reflect.DeepEqual(doc.UnknownField["x"], []int{1, 2}) {
		t.Errorf("other fields not preserved: %s", data)
	}
	got, _, err := NewKeychain(Options{AuthFile: path}).Lookup("reg.example:5000/a")
	if err != nil || got != (Credential{Username: "new", Password: "newpw"}) {
		t.Fatalf("lookup after login = %+v, %v", got, err)
	}

	removed, err := RemoveCredential(path, "reg.example:5000")
	if err != nil || !removed {
		t.Fatalf("RemoveCredential = %v, %v", removed, err)
	}
	removed, err = RemoveCredential(path, "reg.example:5000")
	if err != nil || removed {
		t.Fatalf("second RemoveCredential = %v, %v; want false, nil", removed, err)
	}
	keys, err := RemoveAllCredentials(path)
	if err != nil || !reflect.DeepEqual(keys, []string{"keep.example"}) {
		t.Fatalf("RemoveAllCredentials = %v, %v", keys, err)
	}
	data, _ = os.ReadFile(path)
	doc.Auths = nil
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Auths) != 0 || doc.CredHelpers["gcr.io"] != "gcloud" {
		t.Fatalf("after logout --all: %s (%v)", data, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestSetCredentialRefusesToClobberCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	corrupt := []byte(`{"auths": {"a": {"auth": "x"}`)
	if err := os.WriteFile(path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SetCredential(path, "b.example", "u", "p"); err == nil {
		t.Fatal("want an error for a corrupt file")
	}
	data, _ := os.ReadFile(path)
	if string(data) != string(corrupt) {
		t.Fatalf("corrupt file was changed to %s", data)
	}
}

func TestNormalizeLoginKey(t *testing.T) {
	for in, want := range map[string]string{
		"quay.io":                     "quay.io",
		"https://quay.io/":            "quay.io",
		"https://index.docker.io/v1/": "docker.io",
		"index.docker.io":             "docker.io",
		"quay.io/org/repo":            "quay.io/org/repo",
		"127.0.0.1:5000":              "127.0.0.1:5000",
		"http://127.0.0.1:5000/v2/":   "127.0.0.1:5000",
	} {
		if got := NormalizeLoginKey(in); got != want {
			t.Errorf("NormalizeLoginKey(%q) = %q, want %q", in, got, want)
		}
	}
}
