package imageset

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
)

// Problem is one finding about a config file: where it is (file, line and
// the field path as oc-mirror's docs spell it, e.g.
// mirror.operators[0].packages[1]) and what to do about it.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every error found in one file; its text has one problem a
// line so a user fixes them all in one go instead of one per run.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// fieldError is a validation failure at a field path, before the path is
// matched to a line of the file.
type fieldError struct {
	path, msg string
}

func (e fieldError) Error() string { return e.path + ": " + e.msg }

func fieldErr(path, format string, a ...any) error {
	return fieldError{path: path, msg: fmt.Sprintf(format, a...)}
}

// v1Leftovers are fields of oc-mirror v1 (v1alpha2) that v2alpha1 dropped;
// the message says what replaces each. Keys are field paths with list
// indexes removed.
var v1Leftovers = map[string]string{
	"storageConfig":                             "oc-mirror v1's metadata backend, not used by v2: the workspace (file://DIR/working-dir) holds that state now; remove it",
	"mirror.operators.packages.minBundle":       "oc-mirror v1 only; use minVersion",
	"mirror.operators.packages.startingVersion": "oc-mirror v1 only; use minVersion",
	"mirror.platform.channels.minUpgrade":       "not a v2alpha1 field; use minVersion",
}

// ProblemAt is a problem found at field path of the config after parsing
// (by checking it against a catalog or the update graph): it names the
// file and line the config was parsed from.
func (c *ImageSetConfiguration) ProblemAt(path, format string, a ...any) Problem {
	return Problem{File: c.file, Line: c.lines.lineOf(path), Path: path, Msg: fmt.Sprintf(format, a...)}
}

// lineIndex maps field paths to the line they start on.
type lineIndex map[string]int

// lineOf is the line of path, or of its nearest enclosing field when the
// path itself is not in the file (a field left out, reported missing).
func (idx lineIndex) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := idx[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return idx[""]
}

// checker walks the YAML node tree beside the Go type it decodes into: it
// records the line of every field, and finds unknown fields and values of
// the wrong type with their line, which a decoder reports without either.
type checker struct {
	file     string
	idx      lineIndex
	errs     Problems
	warnings Problems
	// damaged are paths whose value was wrong and left out of the decode;
	// validation problems below them are consequences, not reported.
	damaged []string
}

func (c *checker) add(strict bool, line int, path, format string, a ...any) {
	p := Problem{File: c.file, Line: line, Path: path, Msg: fmt.Sprintf(format, a...)}
	if strict {
		c.errs = append(c.errs, p)
	} else {
		c.warnings = append(c.warnings, p)
	}
}

// walk checks n against t. It removes from the tree what cannot be decoded
// (unknown fields, values of the wrong type), so the rest of the file is
// still decoded and validated and every problem is reported in one run.
// It reports false when n itself is unusable. unknownAreErrors makes
// unknown fields errors instead of warnings.
func (c *checker) walk(n *yaml3.Node, t reflect.Type, path string, unknownAreErrors bool) bool {
	ok := c.check(n, t, path, unknownAreErrors)
	if !ok {
		c.damaged = append(c.damaged, path)
	}
	return ok
}

func (c *checker) check(n *yaml3.Node, t reflect.Type, path string, unknownAreErrors bool) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml3.ScalarNode && n.Tag == "!!null" {
		return true
	}
	if _, ok := c.idx[path]; !ok {
		c.idx[path] = n.Line
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			c.add(true, n.Line, path, "want a mapping of fields, found %s", describe(n))
			return false
		}
		fields := jsonFields(t)
		seen := map[string]int{}
		kept := n.Content[:0:0]
		defer func() { n.Content = kept }()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			if l, dup := seen[k.Value]; dup {
				// YAML decoders keep one of the two silently.
				c.add(true, k.Line, child, "field %q already defined at line %d; keep one", k.Value, l)
				continue
			}
			seen[k.Value] = k.Line
			c.idx[child] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				c.unknown(k, child, fields, unknownAreErrors)
				continue
			}
			if c.walk(v, ft, child, unknownAreErrors) {
				kept = append(kept, k, v)
			}
		}
	case reflect.Slice:
		if n.Kind != yaml3.SequenceNode {
			c.add(true, n.Line, path, "want a list, found %s", describe(n))
			return false
		}
		for i, item := range n.Content {
			if !c.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), unknownAreErrors) {
				// Keep the indexes of the items after it: an empty item.
				*item = yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!null", Value: "null"}
			}
		}
	case reflect.String:
		switch {
		case n.Kind != yaml3.ScalarNode:
			c.add(true, n.Line, path, "want a string, found %s", describe(n))
			return false
		case n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool":
			c.add(true, n.Line, path, "%s is read as a %s, not a string: quote it (%q)", n.Value, strings.TrimPrefix(n.Tag, "!!"), n.Value)
			return false
		}
	case reflect.Bool:
		if n.Kind != yaml3.ScalarNode || n.Tag != "!!bool" {
			c.add(true, n.Line, path, "want true or false, found %s", describe(n))
			return false
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml3.ScalarNode || n.Tag != "!!int" {
			c.add(true, n.Line, path, "want a whole number, found %s", describe(n))
			return false
		}
	}
	return true
}

func (c *checker) isDamaged(path string) bool {
	for _, d := range c.damaged {
		if path == d || strings.HasPrefix(path, d+".") || strings.HasPrefix(path, d+"[") {
			return true
		}
	}
	return false
}

func (c *checker) unknown(k *yaml3.Node, path string, fields map[string]reflect.Type, asError bool) {
	ignored := " is ignored"
	if asError {
		ignored = ""
	}
	if why, ok := v1Leftovers[stripIndexes(path)]; ok {
		c.add(asError, k.Line, path, "field %q is not part of %s%s: %s", k.Value, APIVersion, strings.Replace(ignored, " is", " and is", 1), why)
		return
	}
	msg := fmt.Sprintf("unknown field %q%s", k.Value, ignored)
	if s := suggest(k.Value, fields); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		names := make([]string, 0, len(fields))
		for f := range fields {
			names = append(names, f)
		}
		sort.Strings(names)
		msg += "; fields here: " + strings.Join(names, ", ")
	}
	c.add(asError, k.Line, path, "%s", msg)
}

func describe(n *yaml3.Node) string {
	switch n.Kind {
	case yaml3.MappingNode:
		return "a mapping"
	case yaml3.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// jsonFields maps the JSON names of t's fields to their types, the names a
// config file uses.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func stripIndexes(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// suggest is the known field a misspelt one most likely means: the same
// name in another case, or one at most two edits away.
func suggest(name string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for f := range fields {
		if strings.EqualFold(f, name) {
			return f
		}
		if d := editDistance(strings.ToLower(f), strings.ToLower(name)); d < bestD || (d == bestD && f < best) {
			best, bestD = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// located turns validation errors into problems with lines.
func (c *checker) located(err error) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe fieldError
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			c.located(errors.Join(j.Unwrap()...))
		} else if errors.As(e, &fe) {
			if c.isDamaged(fe.path) {
				continue
			}
			c.errs = append(c.errs, Problem{File: c.file, Line: c.idx.lineOf(fe.path), Path: fe.path, Msg: fe.msg})
		} else {
			c.errs = append(c.errs, Problem{File: c.file, Msg: e.Error()})
		}
	}
}

// yamlProblem turns a YAML syntax error ("yaml: line 3: ...") into a
// problem with that line.
func yamlProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, msg, _ = strings.Cut(msg, ": ")
	}
	return Problem{File: file, Line: line, Msg: "not valid YAML: " + msg}
}
