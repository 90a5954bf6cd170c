package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"
)

// helperTimeout bounds one credential-helper call: a helper waiting for a
// desktop unlock prompt that never comes must not hang a mirror run.
const helperTimeout = 60 * time.Second

// helperReply is the JSON a docker-credential-* helper prints for "get".
type helperReply struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// runHelper runs `docker-credential-NAME get` with serverURL on stdin (the
// docker credential-helper protocol). required says the helper was named
// for this registry in credHelpers: then a missing executable is an error;
// a missing credsStore executable only skips the store, because one stale
// "credsStore" copied from another machine must not break every registry.
//
// origin names the configuration that named the helper, for messages.
func runHelper(name, serverURL, origin string, required bool) (Credential, bool, error) {
	bin := "docker-credential-" + name
	path, err := exec.LookPath(bin)
	if err != nil {
		if required {
			return Credential{}, false, fmt.Errorf("%s names credential helper %q (for %s), but %s is not in PATH: install it or remove the entry", origin, name, serverURL, bin)
		}
		slog.Warn("credential store helper not found, ignoring it", "helper", bin, "configured_in", origin)
		return Credential{}, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "get")
	cmd.Stdin = strings.NewReader(serverURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Helpers report "credentials not found in native keychain" on
		// stdout with a non-zero exit: that is "no credential", not a failure.
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return Credential{}, false, nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(msg) > 0 {
			// The helper's own message, never its (absent) secret output.
			if len(msg) > 200 {
				msg = msg[:200]
			}
			return Credential{}, false, fmt.Errorf("credential helper %s get %s: %w: %s", bin, serverURL, err, msg)
		}
		return Credential{}, false, fmt.Errorf("credential helper %s get %s: %w", bin, serverURL, err)
	}
	var reply helperReply
	if err := json.Unmarshal(stdout.Bytes(), &reply); err != nil {
		// Do not wrap err: the JSON decoder may quote the output, which
		// could hold the secret.
		return Credential{}, false, fmt.Errorf("credential helper %s get %s: output is not the expected JSON {ServerURL, Username, Secret}", bin, serverURL)
	}
	if reply.Username == "" && reply.Secret == "" {
		return Credential{}, false, nil
	}
	// "<token>" is docker's marker for an identity (refresh) token.
	if reply.Username == "<token>" {
		return Credential{IdentityToken: reply.Secret}, true, nil
	}
	return Credential{Username: reply.Username, Password: reply.Secret}, true, nil
}
