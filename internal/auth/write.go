package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
)

// NormalizeLoginKey turns what a user passed to `login`/`logout`
// ("https://quay.io/", "index.docker.io", "quay.io/org/repo") into the key
// podman writes: no scheme, no trailing slash, Docker Hub as "docker.io".
// A URL's path is dropped, as docker does; a plain key keeps its
// repository path (a repository-scoped credential).
func NormalizeLoginKey(s string) string {
	return normalizeKey(strings.TrimSuffix(s, "/"), false)
}

// SetCredential stores user/password under key in the auth.json at path,
// keeping every other entry and field of the file. The file is written
// atomically with mode 0600 (its directory 0700 when created), so a crash
// never leaves a truncated credentials file.
func SetCredential(path, key, username, password string) error {
	return updateFile(path, func(auths map[string]json.RawMessage) (bool, error) {
		val, err := json.Marshal(entry{Auth: base64.StdEncoding.EncodeToString([]byte(username + ":" + password))})
		if err != nil {
			return false, err
		}
		// Drop other spellings of the same key ("https://key") so a stale
		// credential cannot shadow the new one.
		for k := range auths {
			if k != key && strings.Contains(k, "://") && normalizeKey(k, false) == key {
				delete(auths, k)
			}
		}
		auths[key] = val
		return true, nil
	})
}

// RemoveCredential deletes the entries for key (in any spelling) from the
// file at path. It reports whether there was anything to remove.
func RemoveCredential(path, key string) (bool, error) {
	removed := false
	err := updateFile(path, func(auths map[string]json.RawMessage) (bool, error) {
		for k := range auths {
			if k == key || normalizeKey(k, false) == key {
				delete(auths, k)
				removed = true
			}
		}
		return removed, nil
	})
	return removed, err
}

// RemoveAllCredentials empties the "auths" map of the file at path, keeping
// its other fields (credHelpers, credsStore). It returns the removed keys.
func RemoveAllCredentials(path string) ([]string, error) {
	var keys []string
	err := updateFile(path, func(auths map[string]json.RawMessage) (bool, error) {
		for k := range auths {
			keys = append(keys, k)
			delete(auths, k)
		}
		return len(keys) > 0, nil
	})
	sort.Strings(keys)
	return keys, err
}

// updateFile reads path (missing is an empty file), lets change edit its
// "auths" map, and writes the file back atomically when change reports a
// modification. Unknown top-level fields are preserved byte for byte.
func updateFile(path string, change func(auths map[string]json.RawMessage) (bool, error)) error {
	doc := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading credentials file: %w", err)
	case len(bytes.TrimSpace(data)) > 0:
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("credentials file %s: unmarshaling JSON: %w (fix or remove the file; it was not changed)", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := doc["auths"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("credentials file %s: \"auths\" is not an object: %w (fix or remove the file; it was not changed)", path, err)
		}
	}
	changed, err := change(auths)
	if err != nil || !changed {
		return err
	}
	rawAuths, err := json.Marshal(auths)
	if err != nil {
		return fmt.Errorf("encoding credentials: %w", err)
	}
	doc["auths"] = rawAuths
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return fmt.Errorf("encoding credentials file %s: %w", path, err)
	}
	return atomicfile.Write(path, append(out, '\n'), 0o600)
}
