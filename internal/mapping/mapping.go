// Package mapping reads the mapping format of `oc image mirror` — command
// arguments and mapping files — and turns it into a plan.Plan.
//
// The format, as oc reads it:
//
//	# a comment; text after '#' is ignored, blank lines are skipped
//	SRC DST [DST...]        one source, one or more destinations
//	SRC=DST [SRC=DST...]    pairs
//
// References are docker:// (the default when no transport is written) or
// file://repo[:tag] (airlock's local store, rooted at --dir / --from-dir);
// oci://DIR is accepted too and left to the engine.
//
// Naming rules (oc's, with the one choice oc leaves open documented):
//   - SRC must carry a tag or a digest.
//   - DST may not carry a digest: a registry can only be told a tag, the
//     digest follows from the bytes.
//   - DST without a tag inherits SRC's tag.
//   - DST without a tag whose SRC is digest-only gets the tag
//     "sha256-<64 hex>" (DigestTag). This is oc-mirror v2's rule: it is
//     derived from the content alone, so every run, every tool and every
//     destination agree on it, it never collides, and the digest can be read
//     back from the tag. (oc adm catalog mirror uses an fnv32a hash of the
//     full source reference instead; that tag changes when the source
//     registry changes and hides the digest, so it is not used here.
//     Catalog mapping files written by oc already carry explicit tags, so
//     they read the same either way.)
//   - Each destination may be written only once; writing the same
//     SRC→DST pair twice is harmless and counted once, but two different
//     sources for one destination is an error.
//   - SRC equal to DST is rejected: copying an image onto itself does
//     nothing but can hide a typo in the mapping.
//   - Tag wildcards (oc's `repo:*`) are rejected with a message: the set of
//     tags would be decided at copy time, which defeats verification.
//
// Nothing is copied from a mapping that does not parse: Parse collects every
// error of every file and line and returns them all at once, so a user fixes
// a broken mapping in one pass.
package mapping

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// Mapping is one source copied to one or more destinations, with the place
// it was written.
type Mapping struct {
	Source ref.Ref
	Dests  []ref.Ref
	// Pos is "file:line" for mapping files, "argument N" for command-line
	// arguments; it goes into plan.Origin.File and into error messages.
	Pos string
}

// Error is one problem at one place of the input.
type Error struct {
	Pos  string // "mapping.txt:12" or "argument 2"
	Text string // the offending line or argument, trimmed
	Msg  string // what is wrong and what to do
}

func (e *Error) Error() string {
	if e.Text == "" {
		return e.Pos + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s (in %q)", e.Pos, e.Msg, e.Text)
}

// Errors is every problem found in the input, in input order.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mapping has %d error(s); nothing was copied:", len(es))
	for _, e := range es {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// DigestTag is the tag given to a destination whose source is named by digest
// only: "sha256-<hex>" for "sha256:<hex>". Tags are at most 128 characters,
// so a sha512 digest tag is cut to 128 (it still names the image uniquely
// for every practical purpose, as oc-mirror does for release tags).
func DigestTag(digest string) string {
	t := strings.Replace(digest, ":", "-", 1)
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// Input is one mapping file (or stdin) to parse.
type Input struct {
	Name string // shown in errors: the file name, or "<stdin>"
	R    io.Reader
}

// Parser collects mappings from arguments and files and checks the rules
// that span lines (one source per destination). Use Parse for the common
// case.
type Parser struct {
	mappings []Mapping
	errs     Errors
	// dests maps a destination (transport + name) to the source and place
	// that first claimed it.
	dests map[string]claim
}

type claim struct {
	src string
	pos string
}

// Parse parses command-line arguments (may be empty) and then every input in
// order. It returns the mappings, or Errors listing every problem.
func Parse(args []string, inputs ...Input) ([]Mapping, error) {
	var p Parser
	p.Args(args)
	for _, in := range inputs {
		if err := p.Read(in); err != nil {
			return nil, err
		}
	}
	return p.Result()
}

// Args parses command-line arguments: either "SRC DST [DST...]" or a list of
// "SRC=DST" pairs.
func (p *Parser) Args(args []string) {
	if len(args) == 0 {
		return
	}
	p.fields(args, func(i int) (string, string) {
		return fmt.Sprintf("argument %d", i+1), args[i]
	}, "arguments")
}

// Read parses one mapping file. An error reading the stream itself is
// returned at once; errors in the content are collected for Result.
func (p *Parser) Read(in Input) error {
	sc := bufio.NewScanner(in.R)
	// Lines of three long references fit easily; allow generous ones so a
	// machine-written file with many destinations is not cut.
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pos := fmt.Sprintf("%s:%d", in.Name, n)
		text := strings.TrimSpace(line)
		p.fields(f, func(int) (string, string) { return pos, text }, "line")
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading mapping %s after line %d: %w", in.Name, n, err)
	}
	return nil
}

// Result returns the mappings, or every error found.
func (p *Parser) Result() ([]Mapping, error) {
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	if len(p.mappings) == 0 {
		return nil, Errors{{Pos: "input", Msg: "no mappings given: pass SRC DST, SRC=DST or -f mapping.txt"}}
	}
	return p.mappings, nil
}

func (p *Parser) fail(pos, text, format string, a ...any) {
	p.errs = append(p.errs, &Error{Pos: pos, Text: text, Msg: fmt.Sprintf(format, a...)})
}

// fields parses one argv-like list: all SRC=DST pairs, or SRC DST [DST...].
// where(i) gives the position and text to report for field i.
func (p *Parser) fields(f []string, where func(i int) (pos, text string), what string) {
	pairs := 0
	for _, s := range f {
		if strings.Contains(s, "=") {
			pairs++
		}
	}
	switch {
	case pairs == len(f):
		for i, s := range f {
			pos, text := where(i)
			src, dst, _ := strings.Cut(s, "=")
			p.add(pos, text, src, []string{dst})
		}
	case pairs > 0:
		pos, text := where(0)
		p.fail(pos, text, "mixes SRC=DST pairs with space-separated references; write either SRC DST [DST...] or SRC=DST pairs on one %s", what)
	case len(f) == 1:
		pos, text := where(0)
		p.fail(pos, text, "source %q has no destination; write SRC DST or SRC=DST", f[0])
	default:
		pos, text := where(0)
		p.add(pos, text, f[0], f[1:])
	}
}

// add checks one source and its destinations and records the mapping.
func (p *Parser) add(pos, text, srcS string, dstS []string) {
	before := len(p.errs)
	src, err := parseSource(srcS)
	if err != nil {
		p.fail(pos, text, "source: %v", err)
	}
	var dests []ref.Ref
	for _, d := range dstS {
		dst, err := parseDest(d)
		if err != nil {
			p.fail(pos, text, "destination: %v", err)
			continue
		}
		if len(p.errs) > before {
			continue // the source is bad; nothing to derive the tag from
		}
		if dst.Tag == "" {
			if src.Tag != "" {
				dst.Tag = src.Tag
			} else {
				dst.Tag = DigestTag(src.Digest)
			}
		}
		if sameImage(src, dst) {
			p.fail(pos, text, "source and destination are the same image %s; the destination must differ", dst)
			continue
		}
		key := dst.String()
		if p.dests == nil {
			p.dests = map[string]claim{}
		}
		if c, ok := p.dests[key]; ok {
			if c.src != src.String() {
				p.fail(pos, text, "destination %s is already the target of %s at %s; each destination may be written only once", key, c.src, c.pos)
			}
			// The same pair again (catalog mapping files repeat images
			// shared by bundles): keep the first, it is one copy.
			continue
		}
		p.dests[key] = claim{src: src.String(), pos: pos}
		dests = append(dests, dst)
	}
	if len(p.errs) > before || len(dests) == 0 {
		return
	}
	p.mappings = append(p.mappings, Mapping{Source: src, Dests: dests, Pos: pos})
}

func parseSource(s string) (ref.Ref, error) {
	if s == "" {
		return ref.Ref{}, fmt.Errorf("empty reference")
	}
	if strings.HasSuffix(s, ":*") {
		return ref.Ref{}, fmt.Errorf("%q: tag wildcards are not supported; list each tag to mirror", s)
	}
	r, err := ref.Parse(s)
	if err != nil {
		return ref.Ref{}, err
	}
	if !r.HasTagOrDigest() {
		return ref.Ref{}, fmt.Errorf("%q has neither tag nor digest; name the image to copy, e.g. %s:latest or %s@sha256:<hex>", s, s, s)
	}
	return r, nil
}

func parseDest(s string) (ref.Ref, error) {
	if s == "" {
		return ref.Ref{}, fmt.Errorf("empty reference")
	}
	r, err := ref.Parse(s)
	if err != nil {
		return ref.Ref{}, err
	}
	if r.Digest != "" {
		return ref.Ref{}, fmt.Errorf("%q names a digest; a destination takes a tag or none (it inherits the source tag); drop @%s", s, r.Digest)
	}
	return r, nil
}

// sameImage reports whether dst would overwrite src itself.
func sameImage(src, dst ref.Ref) bool {
	if src.Transport != dst.Transport || src.Repository() != dst.Repository() {
		return false
	}
	return src.Tag != "" && src.Tag == dst.Tag
}

// ToPlan turns mappings into a plan: one item per distinct source, its
// destinations in input order, so the engine fetches each source once even
// when several lines copy it.
func ToPlan(ms []Mapping) plan.Plan {
	var p plan.Plan
	index := map[string]int{}
	for _, m := range ms {
		key := m.Source.String()
		if i, ok := index[key]; ok {
			p.Items[i].Dests = append(p.Items[i].Dests, m.Dests...)
			continue
		}
		index[key] = len(p.Items)
		p.Add(plan.Item{
			Source: m.Source,
			Dests:  append([]ref.Ref(nil), m.Dests...),
			Kind:   plan.KindImage,
			Origin: plan.Origin{File: m.Pos},
			Digest: m.Source.Digest,
		})
	}
	return p
}

// Pairs lists every (source, destination) pair of the mappings, sorted by
// destination; verify walks these.
func Pairs(ms []Mapping) []Pair {
	var out []Pair
	for _, m := range ms {
		for _, d := range m.Dests {
			out = append(out, Pair{Source: m.Source, Dest: d, Pos: m.Pos})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Dest.String() < out[j].Dest.String() })
	return out
}

// Pair is one source copied to one destination.
type Pair struct {
	Source ref.Ref
	Dest   ref.Ref
	Pos    string
}
