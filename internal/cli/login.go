package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/airlock-mirror/airlock/internal/auth"
)

// LoginOptions holds `airlock login` flags and arguments.
type LoginOptions struct {
	Registry      RegistryFlags
	Username      string
	Password      string
	PasswordStdin bool

	// Derived in Complete.
	server   string // what the user typed, for messages
	key      string // auth.json key: host[:port][/repo path]
	host     string // host[:port] to verify against
	authFile string // file written

	streams IOStreams
}

func newLoginCommand(streams IOStreams) *cobra.Command {
	o := &LoginOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "login REGISTRY",
		Short: "Log in to a registry and store the credentials in auth.json",
		Long: `Verify a username and password against REGISTRY, then store them in a
podman-compatible auth.json that every airlock command (and podman, skopeo,
buildah) reads.

The file written is --authfile, else $REGISTRY_AUTH_FILE, else
${XDG_RUNTIME_DIR}/containers/auth.json. It is written atomically with mode
0600; other entries in it are kept. REGISTRY may carry a repository path
(quay.io/org) to store a credential used only for that namespace.`,
		Example: `  # Log in to a mirror registry whose CA is not trusted by the system
  airlock login mirror.example.com:5000 -u admin --ca-file ./airlock-registry/certs/ca.crt

  # Non-interactive, the password from a file or a secret store
  cat pw.txt | airlock login quay.io -u myuser --password-stdin

  # Store the credential in a specific file (for example the cluster pull secret)
  airlock login registry.example.com -u admin -p secret --authfile ./pull-secret.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.Registry.AddFlags(cmd.Flags())
	// For login, --authfile is the file written, not a file searched.
	cmd.Flags().Lookup("authfile").Usage = "credentials file to write (default: $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json)"
	cmd.Flags().StringVarP(&o.Username, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&o.Password, "password", "p", "", "password (visible in the process list: prefer --password-stdin)")
	cmd.Flags().BoolVar(&o.PasswordStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

// parseServer splits what the user typed for login/logout into the
// auth.json key and the host to talk to. It accepts "host", "host:port",
// "host/ns/repo" and URL forms ("https://host/").
func parseServer(s string) (key, host string, err error) {
	if strings.TrimSpace(s) == "" {
		return "", "", errors.New("registry must not be empty (want e.g. quay.io or mirror.example.com:5000)")
	}
	key = auth.NormalizeLoginKey(s)
	host, _, _ = strings.Cut(key, "/")
	if _, err := name.NewRegistry(host); err != nil {
		return "", "", fmt.Errorf("invalid registry %q: %w", s, err)
	}
	if strings.Contains(host, "@") {
		return "", "", fmt.Errorf("invalid registry %q", s)
	}
	return key, host, nil
}

// Complete derives the auth.json key, the registry host and the file, and
// reads the password from stdin or the terminal.
func (o *LoginOptions) Complete(args []string) error {
	o.server = args[0]
	var err error
	if o.key, o.host, err = parseServer(args[0]); err != nil {
		return err
	}
	o.authFile = o.Registry.AuthFile
	if o.authFile == "" {
		o.authFile = auth.DefaultAuthFile()
	}
	if o.PasswordStdin {
		if o.Password != "" {
			return errors.New("-p/--password and --password-stdin are mutually exclusive")
		}
		data, err := io.ReadAll(io.LimitReader(o.streams.In, 1<<20))
		if err != nil {
			return fmt.Errorf("reading password from stdin: %w", err)
		}
		// Strip one trailing newline as `echo pw |` adds it; keep other
		// whitespace, which may be part of the password.
		o.Password = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		return nil
	}
	in, isFile := o.streams.In.(*os.File)
	interactive := isFile && term.IsTerminal(int(in.Fd()))
	if o.Username == "" && interactive {
		fmt.Fprint(o.streams.ErrOut, "Username: ")
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading username: %w", err)
		}
		o.Username = strings.TrimSpace(line)
	}
	if o.Password == "" && interactive {
		fmt.Fprint(o.streams.ErrOut, "Password: ")
		pw, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(o.streams.ErrOut)
		if err != nil {
			return fmt.Errorf("reading password: %w", err)
		}
		o.Password = string(pw)
	}
	return nil
}

// Validate rejects missing credentials with what to pass instead.
func (o *LoginOptions) Validate() error {
	if o.Username == "" {
		return errors.New("-u/--username is required")
	}
	if strings.Contains(o.Username, ":") {
		return errors.New("-u/--username must not contain ':' (auth.json stores user:password)")
	}
	if o.Password == "" {
		return errors.New("a password is required: pass -p/--password or --password-stdin")
	}
	return nil
}

// Run verifies the credentials against the registry and only then stores
// them, so a typo never replaces a working credential.
func (o *LoginOptions) Run(ctx context.Context) error {
	if err := o.verify(ctx); err != nil {
		return err
	}
	if err := auth.SetCredential(o.authFile, o.key, o.Username, o.Password); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "Login Succeeded: credentials for %s stored in %s\n", o.key, o.authFile)
	return nil
}

// verify runs the registry's auth flow (ping /v2/, then basic or bearer
// token) with the given credentials and checks GET /v2/ succeeds.
func (o *LoginOptions) verify(ctx context.Context) error {
	reg, err := name.NewRegistry(o.host, o.Registry.NameOptions()...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %w", o.server, err)
	}
	base, err := o.Registry.Transport()
	if err != nil {
		return err
	}
	authr := authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password})
	// Scope the token request to the repository when one was given, so
	// registries that issue only repository tokens (quay.io robots) work.
	var scopes []string
	if _, path, ok := strings.Cut(o.key, "/"); ok {
		scopes = []string{reg.Repo(path).Scope(transport.PullScope)}
	}
	tr, err := transport.NewWithContext(ctx, reg, authr, base, scopes)
	if err != nil {
		return loginError(o.host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", o.host, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return loginError(o.host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(o.host, err)
	}
	return nil
}

// loginError explains the common failures; the credentials are not in err
// (go-containerregistry never puts them in errors).
func loginError(host string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("logging in to %s: wrong username or password (registry answered %d %s); nothing was stored",
			host, terr.StatusCode, http.StatusText(terr.StatusCode))
	}
	msg := err.Error()
	if strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate") {
		return fmt.Errorf("logging in to %s: %w; trust the registry's CA with --ca-file FILE (or --insecure for a test registry)", host, err)
	}
	return fmt.Errorf("logging in to %s: %w", host, err)
}

// LogoutOptions holds `airlock logout` flags and arguments.
type LogoutOptions struct {
	AuthFile string
	All      bool

	key      string
	authFile string
	streams  IOStreams
}

func newLogoutCommand(streams IOStreams) *cobra.Command {
	o := &LogoutOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "logout [REGISTRY | --all]",
		Short: "Remove stored registry credentials from auth.json",
		Long: `Remove the credentials stored for REGISTRY (in any spelling: host,
https://host/) from the auth.json that airlock login writes, or every stored
credential with --all. Other fields of the file (credHelpers, credsStore)
are kept.`,
		Example: `  airlock logout mirror.example.com:5000
  airlock logout --all --authfile ./auth.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.AuthFile, "authfile", "a", "", "credentials file (default: $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json)")
	cmd.Flags().BoolVar(&o.All, "all", false, "remove every stored credential")
	return cmd
}

// Complete checks the arguments and picks the file.
func (o *LogoutOptions) Complete(args []string) error {
	switch {
	case o.All && len(args) > 0:
		return errors.New("give either REGISTRY or --all, not both")
	case !o.All && len(args) == 0:
		return errors.New("give the REGISTRY to log out of, or --all")
	}
	if len(args) == 1 {
		key, _, err := parseServer(args[0])
		if err != nil {
			return err
		}
		o.key = key
	}
	o.authFile = o.AuthFile
	if o.authFile == "" {
		o.authFile = auth.DefaultAuthFile()
	}
	return nil
}

// Run removes the credentials.
func (o *LogoutOptions) Run() error {
	if o.All {
		keys, err := auth.RemoveAllCredentials(o.authFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.streams.Out, "Removed %d credential(s) from %s\n", len(keys), o.authFile)
		return nil
	}
	removed, err := auth.RemoveCredential(o.authFile, o.key)
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("not logged in to %s: no credential for it in %s", o.key, o.authFile)
	}
	fmt.Fprintf(o.streams.Out, "Removed login credentials for %s from %s\n", o.key, o.authFile)
	return nil
}
