package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// entry is one value of the "auths" map. Docker and podman write "auth"
// (base64 of "user:password"); some tools write username/password instead.
type entry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func (e entry) empty() bool {
	return e.Auth == "" && e.Username == "" && e.Password == "" && e.IdentityToken == ""
}

// configFile is a parsed auth.json / config.json / .dockercfg.
type configFile struct {
	path        string
	legacy      bool
	auths       map[string]entry
	credHelpers map[string]string
	credsStore  string
}

// readConfigFile parses f; a missing file is (nil, nil). A file that exists
// but cannot be parsed is an error: silently ignoring it would make pulls
// fail later with a confusing "unauthorized".
func readConfigFile(f authFile) (*configFile, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) && f.path == runtimeDirFallback() {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading credentials file: %w", err)
	}
	cfg := &configFile{path: f.path, legacy: f.legacy}
	if len(strings.TrimSpace(string(data))) == 0 {
		return cfg, nil
	}
	if f.legacy {
		if err := json.Unmarshal(data, &cfg.auths); err != nil {
			return nil, fmt.Errorf("credentials file %s: unmarshaling JSON: %w (fix or remove the file)", f.path, err)
		}
		return cfg, nil
	}
	var doc struct {
		Auths       map[string]entry  `json:"auths"`
		CredHelpers map[string]string `json:"credHelpers"`
		CredsStore  string            `json:"credsStore"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("credentials file %s: unmarshaling JSON: %w (fix or remove the file)", f.path, err)
	}
	cfg.auths, cfg.credHelpers, cfg.credsStore = doc.Auths, doc.CredHelpers, doc.CredsStore
	return cfg, nil
}

// normalizeKey turns a key as written in a file into the canonical form
// targets are compared with: without scheme, with Docker Hub spelled
// "docker.io". Keys written as URLs ("https://host/v1/") and every key of the
// legacy format are registry-wide, so their path is dropped; plain keys keep
// their repository path ("quay.io/org/repo" is scoped to that repository).
func normalizeKey(key string, legacy bool) string {
	s := strings.TrimPrefix(key, "http://")
	s = strings.TrimPrefix(s, "https://")
	if legacy || s != key {
		s, _, _ = strings.Cut(s, "/")
	}
	s = strings.TrimSuffix(s, "/")
	host, rest, hasRest := strings.Cut(s, "/")
	host = canonicalRegistry(host)
	if hasRest {
		return host + "/" + rest
	}
	return host
}

// candidates lists the keys that may hold a credential for target, most
// specific first: "h/a/b/c", "h/a/b", "h/a", "h".
func candidates(target string) []string {
	out := []string{target}
	for {
		i := strings.LastIndex(target, "/")
		if i < 0 {
			return out
		}
		target = target[:i]
		out = append(out, target)
	}
}

// find looks target up in this file. found is false when the file says
// nothing about target, so the search goes on with the next file.
func (c *configFile) find(target string) (cred Credential, source string, found bool, err error) {
	host, _, _ := strings.Cut(target, "/")

	// credHelpers name a helper for one registry and take precedence over
	// everything else in the file, as in docker.
	if helper, ok := c.helperFor(host); ok {
		cred, found, err := runHelper(helper, helperServerURL(host), "credentials file "+c.path, true)
		return cred, "docker-credential-" + helper, found, err
	}

	keys := make([]string, 0, len(c.auths))
	for k := range c.auths {
		keys = append(keys, k)
	}
	// Sorted so that two keys normalising to the same target always resolve
	// the same way (exact spellings sort before URL spellings).
	sort.Strings(keys)
	for _, cand := range candidates(target) {
		// An exact key beats a key that only matches after normalisation.
		if e, ok := c.auths[cand]; ok {
			return c.decode(cand, e, host)
		}
		for _, k := range keys {
			if normalizeKey(k, c.legacy) == cand {
				return c.decode(k, c.auths[k], host)
			}
		}
	}
	if c.credsStore != "" {
		cred, found, err := runHelper(c.credsStore, helperServerURL(host), "credentials file "+c.path, false)
		return cred, "docker-credential-" + c.credsStore, found, err
	}
	return Credential{}, "", false, nil
}

// decode turns the entry stored under key into a credential. An empty entry
// is what docker writes next to a credsStore: the secret lives in the store.
func (c *configFile) decode(key string, e entry, host string) (Credential, string, bool, error) {
	if e.empty() {
		if c.credsStore != "" {
			cred, found, err := runHelper(c.credsStore, helperServerURL(host), "credentials file "+c.path, false)
			return cred, "docker-credential-" + c.credsStore, found, err
		}
		return Credential{}, "", false, nil
	}
	var cred Credential
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			// Some tools write the value without '=' padding.
			raw, err = base64.RawStdEncoding.DecodeString(e.Auth)
		}
		if err != nil {
			return Credential{}, "", false, fmt.Errorf("credentials file %s: entry %q: \"auth\" is not valid base64 (log in again)", c.path, key)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credential{}, "", false, fmt.Errorf("credentials file %s: entry %q: \"auth\" does not decode to user:password (log in again)", c.path, key)
		}
		cred.Username, cred.Password = user, pass
	} else {
		cred.Username, cred.Password = e.Username, e.Password
	}
	if e.IdentityToken != "" {
		// With an identity token the registry's token service is asked with
		// a refresh_token grant; the password must not be sent.
		cred.Password = ""
		cred.IdentityToken = e.IdentityToken
	}
	return cred, c.path, true, nil
}

// helperFor returns the credHelpers entry for host, accepting the same key
// spellings as the auths map ("https://host", Docker Hub aliases).
func (c *configFile) helperFor(host string) (helper string, ok bool) {
	if h, ok := c.credHelpers[host]; ok {
		return h, true
	}
	keys := make([]string, 0, len(c.credHelpers))
	for k := range c.credHelpers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := normalizeKey(k, false)
		n, _, _ = strings.Cut(n, "/")
		if n == host {
			return c.credHelpers[k], true
		}
	}
	return "", false
}

// helperServerURL is the server name handed to a credential helper: the
// registry host, except that docker stores Docker Hub credentials under its
// legacy index URL.
func helperServerURL(host string) string {
	if host == "docker.io" {
		return "https://index.docker.io/v1/"
	}
	return host
}
