// Package audit keeps the trail of what airlock did to a mirror: one JSON
// record per mirror, sync, delete or prune run — who ran it, where, the
// command line with secrets masked, the config and plan digests, the digests
// written and deleted, and the failures.
//
// Records live in two places. A workspace (or any directory) keeps an
// append-only JSON Lines file. A registry keeps each record as a small OCI
// artifact in one repository (DefaultRepo), so the trail travels with the
// registry, works on any storage (filesystem, S3) and on registries airlock
// does not run, and the web view of `airlock registry serve` reads it through
// the registry API like any other content.
package audit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	// DefaultRepo is the registry repository holding run records.
	DefaultRepo = "airlock/history"
	// ArtifactType marks a run record artifact.
	ArtifactType = "application/vnd.airlock.run.v1+json"
	// FileName is the JSON Lines audit log in a workspace.
	FileName = "audit.jsonl"
)

// Record is one run.
type Record struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Duration string    `json:"duration,omitempty"`
	// Command is the airlock command, e.g. "mirror", "sync", "image mirror".
	Command string   `json:"command"`
	Args    []string `json:"args"` // with secrets masked (MaskArgs)
	User    string   `json:"user"`
	Host    string   `json:"host"`

	ConfigDigest string `json:"configDigest,omitempty"`
	PlanDigest   string `json:"planDigest,omitempty"`
	Destination  string `json:"destination,omitempty"`

	Images   int       `json:"images"`
	Bytes    int64     `json:"bytes"`             // bytes sent
	Written  []string  `json:"written,omitempty"` // destination references written, by digest
	Planned  []string  `json:"planned,omitempty"` // every destination the run's plan names
	Deleted  []string  `json:"deleted,omitempty"`
	Added    []string  `json:"added,omitempty"`   // images new since the previous run
	Removed  []string  `json:"removed,omitempty"` // images dropped since the previous run
	Failures []Failure `json:"failures,omitempty"`
	Result   string    `json:"result"` // "ok", "failed" or "partial"
}

// Failure is one image that could not be handled.
type Failure struct {
	Image string `json:"image"`
	Error string `json:"error"`
}

// New starts a record for command with the process's user and host; args are
// masked here, so a record never holds a secret.
func New(command string, args []string) Record {
	r := Record{Time: time.Now().UTC(), Command: command, Args: MaskArgs(args), Result: "ok"}
	var b [4]byte
	_, _ = rand.Read(b[:])
	r.ID = r.Time.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	if u, err := user.Current(); err == nil {
		r.User = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		r.Host = h
	}
	return r
}

// secretFlags take a secret as their value.
var secretFlags = map[string]bool{
	"--password": true, "-p": true, "--creds": true, "--src-creds": true, "--dest-creds": true,
	"--registry-token": true, "--token": true, "--sign-key-password": true, "--aws-secret-access-key": true,
}

// MaskArgs replaces secret flag values and passwords in URLs with "***".
func MaskArgs(args []string) []string {
	out := make([]string, len(args))
	maskNext := false
	for i, a := range args {
		switch {
		case maskNext:
			out[i], maskNext = "***", false
			continue
		case secretFlags[a]:
			out[i], maskNext = a, true
			continue
		}
		if k, _, ok := strings.Cut(a, "="); ok && secretFlags[k] {
			out[i] = k + "=***"
			continue
		}
		out[i] = maskURLPassword(a)
	}
	return out
}

// maskURLPassword masks the password of scheme://user:pass@host.
func maskURLPassword(s string) string {
	scheme := strings.Index(s, "://")
	if scheme < 0 {
		return s
	}
	rest := s[scheme+3:]
	at := strings.IndexByte(rest, '@')
	slash := strings.IndexByte(rest, '/')
	if at < 0 || (slash >= 0 && slash < at) {
		return s
	}
	if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
		return s[:scheme+3] + rest[:colon] + ":***" + rest[at:]
	}
	return s
}

// Finish sets the duration and the result from the failures.
func (r *Record) Finish(err error) {
	r.Duration = time.Since(r.Time).Round(time.Millisecond).String()
	switch {
	case err != nil && len(r.Written) == 0:
		r.Result = "failed"
	case err != nil || len(r.Failures) > 0:
		r.Result = "partial"
	default:
		r.Result = "ok"
	}
}

// AppendFile appends r as one line to the JSON Lines file at path (created
// with its directory). One write of a whole line with O_APPEND, then fsync:
// concurrent writers never interleave and a crash loses at most the record
// being written, never an earlier one.
func AppendFile(path string, r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("appending to audit log %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	return f.Close()
}

// ReadFile reads every record of a JSON Lines audit log, oldest first. A
// torn last line (a crash while appending) is skipped; any other bad line is
// an error naming it.
func ReadFile(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return parseLines(data, path)
}

func parseLines(data []byte, source string) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			if !bytes.HasSuffix(data, []byte("\n")) && isLastLine(data, line) {
				break // torn final append
			}
			return nil, fmt.Errorf("%s:%d: not an audit record: %w", source, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	Sort(out)
	return out, nil
}

func isLastLine(data []byte, line int) bool {
	return bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n"))+1 == line
}

// Sort orders records oldest first.
func Sort(rs []Record) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Time.Before(rs[j].Time) })
}

// Decode reads one record (the content of a record artifact).
func Decode(r io.Reader) (Record, error) {
	var rec Record
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rec); err != nil {
		return rec, fmt.Errorf("decoding run record: %w", err)
	}
	if rec.ID == "" || rec.Time.IsZero() {
		return rec, errors.New("decoding run record: no id or time")
	}
	return rec, nil
}
