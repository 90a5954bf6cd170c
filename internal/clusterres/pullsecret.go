package clusterres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// PullSecretNamespace and PullSecretName are where the cluster keeps its
// global pull secret.
const (
	PullSecretNamespace = "openshift-config"
	PullSecretName      = "pull-secret"
	// PullSecretKey is the data key of a kubernetes.io/dockerconfigjson Secret.
	PullSecretKey = ".dockerconfigjson"
)

// MergeResult is a merged pull secret. Added and Replaced name the registry
// keys that changed (never their credentials), so callers can log them.
type MergeResult struct {
	JSON     []byte // the merged pull secret, indented, ending in a newline
	Added    []string
	Replaced []string
	Kept     int // entries of the existing pull secret left as they were
}

// MergePullSecret adds the mirror registry credentials of authfile (a
// podman auth.json or docker config.json) to an existing cluster pull secret.
// Entries of the existing secret are kept byte for byte; an entry of the
// authfile for the same key replaces it. registries, when given, selects
// the authfile keys to take: a key equal to a HOST, or below it
// ("HOST/namespace"); each must match at least one entry. Fields other than
// "auths" in the existing secret are kept; the authfile's are not taken
// (credential helpers cannot run on a cluster node).
//
// Errors name the file (existingName, authName) but never a credential.
func MergePullSecret(existing []byte, existingName string, authfile []byte, authName string, registries []string) (MergeResult, error) {
	top, ex, err := parseAuths(existing, existingName)
	if err != nil {
		return MergeResult{}, err
	}
	_, add, err := parseAuths(authfile, authName)
	if err != nil {
		return MergeResult{}, err
	}
	take := map[string]bool{}
	if len(registries) == 0 {
		for k := range add {
			take[k] = true
		}
		if len(take) == 0 {
			return MergeResult{}, fmt.Errorf("%s: no registry credentials in \"auths\"", authName)
		}
	}
	for _, r := range registries {
		if err := checkRegistryHost(r); err != nil {
			return MergeResult{}, err
		}
		n := 0
		for k := range add {
			if k == r || strings.HasPrefix(k, r+"/") {
				take[k] = true
				n++
			}
		}
		if n == 0 {
			return MergeResult{}, fmt.Errorf("%s: no credentials for registry %s (log in first: airlock login %s)", authName, r, r)
		}
	}
	var res MergeResult
	res.Kept = len(ex)
	for k := range take {
		if _, ok := ex[k]; ok {
			res.Replaced = append(res.Replaced, k)
			res.Kept--
		} else {
			res.Added = append(res.Added, k)
		}
		ex[k] = add[k]
	}
	sort.Strings(res.Added)
	sort.Strings(res.Replaced)
	auths, err := json.Marshal(ex) // map keys come out sorted
	if err != nil {
		return MergeResult{}, fmt.Errorf("encoding merged pull secret: %w", err)
	}
	top["auths"] = auths
	raw, err := json.Marshal(top)
	if err != nil {
		return MergeResult{}, fmt.Errorf("encoding merged pull secret: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return MergeResult{}, fmt.Errorf("encoding merged pull secret: %w", err)
	}
	out.WriteByte('\n')
	res.JSON = out.Bytes()
	return res, nil
}

// parseAuths decodes {"auths": {KEY: {...}}} keeping every value raw.
func parseAuths(data []byte, name string) (map[string]json.RawMessage, map[string]json.RawMessage, error) {
	top := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &top); err != nil {
		// The decoder's message quotes no input, so no credential leaks.
		return nil, nil, fmt.Errorf("%s: not a JSON pull secret: %w", name, err)
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return nil, nil, fmt.Errorf("%s: \"auths\" is not an object of registries", name)
		}
	}
	for k, v := range auths {
		var entry map[string]json.RawMessage
		if json.Unmarshal(v, &entry) != nil {
			return nil, nil, fmt.Errorf("%s: auths entry %q is not an object", name, k)
		}
		if _, ok := entry["auth"]; !ok {
			if _, ok := entry["identitytoken"]; !ok {
				return nil, nil, fmt.Errorf("%s: auths entry %q has no \"auth\" (a cluster cannot use credential helpers)", name, k)
			}
		}
	}
	return top, auths, nil
}

// Secret is a v1 Secret; Data values are base64-encoded when marshalled.
type Secret struct {
	TypeMeta
	Metadata ObjectMeta        `json:"metadata"`
	Type     string            `json:"type"`
	Data     map[string][]byte `json:"data"`
}

// PullSecretObject is the cluster's global pull secret holding pullSecret
// (the JSON of MergeResult.JSON).
func PullSecretObject(pullSecret []byte) Secret {
	return Secret{
		TypeMeta: TypeMeta{"v1", "Secret"},
		Metadata: ObjectMeta{Name: PullSecretName, Namespace: PullSecretNamespace},
		Type:     "kubernetes.io/dockerconfigjson",
		Data:     map[string][]byte{PullSecretKey: pullSecret},
	}
}

// SetPullSecretCommand is the oc command that replaces the cluster's pull
// secret with the file at path. It names the file, so it holds no secret.
func SetPullSecretCommand(path string) string {
	return fmt.Sprintf("oc set data secret/%s -n %s --from-file=%s=%s", PullSecretName, PullSecretNamespace, PullSecretKey, shellQuote(path))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
