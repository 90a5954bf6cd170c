package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// AuthFilesHelper is the credential-helpers entry of registries.conf that
// stands for the auth.json / config.json files (containers-registries.conf(5)).
const AuthFilesHelper = "containers-auth.json"

// credentialHelpersSource is where the credential-helpers list came from,
// for error messages.
type credentialHelpers struct {
	helpers []string
	source  string
}

// defaultRegistriesConf returns the registries.conf podman reads and its
// drop-in directory: $CONTAINERS_REGISTRIES_CONF alone when set, else the
// user's ~/.config/containers/registries.conf when it exists, else
// /etc/containers/registries.conf, each with its ".d" directory.
func defaultRegistriesConf() (conf, dir string) {
	if p := os.Getenv("CONTAINERS_REGISTRIES_CONF"); p != "" {
		return p, ""
	}
	cfgHome := os.Getenv("XDG_CONFIG_HOME")
	if cfgHome == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfgHome = filepath.Join(home, ".config")
		}
	}
	if cfgHome != "" {
		user := filepath.Join(cfgHome, "containers", "registries.conf")
		if _, err := os.Stat(user); err == nil {
			return user, user + ".d"
		}
	}
	return "/etc/containers/registries.conf", "/etc/containers/registries.conf.d"
}

// loadCredentialHelpers reads the credential-helpers list of conf, then of
// every *.conf in dir in lexical order (a drop-in that sets the key
// replaces the list). Missing files are fine. An unset or empty list means
// the auth files only, as in podman.
func loadCredentialHelpers(conf, dir string) (credentialHelpers, error) {
	out := credentialHelpers{helpers: []string{AuthFilesHelper}}
	files := []string{}
	if conf != "" {
		files = append(files, conf)
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("reading registries.conf drop-in directory: %w", err)
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			files = append(files, filepath.Join(dir, n))
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("reading registries configuration: %w", err)
		}
		list, set, err := parseCredentialHelpers(string(data))
		if err != nil {
			return out, fmt.Errorf("registries configuration %s: %w", f, err)
		}
		if set {
			out = credentialHelpers{helpers: list, source: f}
		}
	}
	if len(out.helpers) == 0 {
		out.helpers = []string{AuthFilesHelper}
	}
	return out, nil
}

// parseCredentialHelpers extracts the top-level credential-helpers array
// from registries.conf TOML. Only this one key is needed, so rather than a
// TOML library, the top-level section (everything before the first table
// header) is scanned for `credential-helpers = [ "a", "b" ]`, which may span
// lines.
func parseCredentialHelpers(text string) (list []string, set bool, err error) {
	var value strings.Builder
	collecting := false
	for lineNo, line := range strings.Split(text, "\n") {
		line = stripComment(line)
		trimmed := strings.TrimSpace(line)
		if !collecting {
			if strings.HasPrefix(trimmed, "[") {
				break // first table: no more top-level keys
			}
			key, rest, ok := strings.Cut(trimmed, "=")
			if !ok || strings.Trim(strings.TrimSpace(key), `"`) != "credential-helpers" {
				continue
			}
			collecting, set = true, true
			value.Reset()
			trimmed = strings.TrimSpace(rest)
			if !strings.HasPrefix(trimmed, "[") {
				return nil, true, fmt.Errorf("line %d: credential-helpers must be an array of strings", lineNo+1)
			}
		}
		value.WriteString(trimmed)
		value.WriteString(" ")
		if strings.HasSuffix(trimmed, "]") {
			collecting = false
			list, err = parseStringArray(value.String())
			if err != nil {
				return nil, true, fmt.Errorf("line %d: credential-helpers: %w", lineNo+1, err)
			}
		}
	}
	if collecting {
		return nil, true, errors.New("credential-helpers: unterminated array")
	}
	return list, set, nil
}

// stripComment drops a TOML comment; '#' inside a quoted string is kept.
func stripComment(line string) string {
	var quote rune
	for i, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == '#':
			return line[:i]
		}
	}
	return line
}

// parseStringArray parses `[ "a", 'b', ]`.
func parseStringArray(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, errors.New("want an array of strings")
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	var out []string
	for s != "" {
		if s[0] != '"' && s[0] != '\'' {
			return nil, fmt.Errorf("want a quoted string at %q", s)
		}
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return nil, errors.New("unterminated string")
		}
		item := s[1 : end+1]
		if item == "" {
			return nil, errors.New("empty helper name")
		}
		out = append(out, item)
		s = strings.TrimSpace(s[end+2:])
		if strings.HasPrefix(s, ",") {
			s = strings.TrimSpace(s[1:])
		} else if s != "" {
			return nil, fmt.Errorf("want ',' before %q", s)
		}
	}
	return out, nil
}
