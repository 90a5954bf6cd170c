package audit

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMaskArgs(t *testing.T) {
	in := []string{"login", "reg:5000", "-u", "admin", "--password", "hunter2", "--creds=a:b", "-p", "x",
		"docker://admin:pw@reg:5000/ns", "https://user@host/p", "--password-stdin"}
	got := strings.Join(MaskArgs(in), " ")
	want := "login reg:5000 -u admin --password *** --creds=*** -p *** docker://admin:***@reg:5000/ns https://user@host/p --password-stdin"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendFileConcurrentAndTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ws", FileName)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := New("mirror", []string{"mirror", "--password", "secret"})
			r.Finish(nil)
			if err := AppendFile(path, r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, err := ReadFile(path)
	if err != nil || len(recs) != 20 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Result != "ok" || strings.Contains(strings.Join(r.Args, " "), "secret") {
			t.Fatalf("record %+v", r)
		}
	}
	// A crash in the middle of an append leaves a torn last line: skipped.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"x","time":"2026-`)
	f.Close()
	if recs, err := ReadFile(path); err != nil || len(recs) != 20 {
		t.Fatalf("torn line: %d records, %v", len(recs), err)
	}
	// A bad line in the middle is an error naming it.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("garbage\n"), data...), 0o644)
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), ":1: not an audit record") {
		t.Fatalf("bad line: %v", err)
	}
}

func TestFinish(t *testing.T) {
	r := New("sync", nil)
	r.Failures = []Failure{{Image: "a", Error: "b"}}
	r.Finish(nil)
	if r.Result != "partial" {
		t.Errorf("failures without error: %s", r.Result)
	}
	r = New("sync", nil)
	r.Finish(os.ErrNotExist)
	if r.Result != "failed" {
		t.Errorf("error with nothing written: %s", r.Result)
	}
}
