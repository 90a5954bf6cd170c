package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/distribution/distribution/v3/registry/auth"

	"github.com/airlock-mirror/airlock/internal/registry/htpasswd"
)

// authName is the access controller airlock registers with distribution.
// We do not use distribution's "htpasswd" controller because it runs bcrypt
// on every request and, when the file is missing, silently creates one with
// a random "docker" user.
const (
	authName      = "airlock-htpasswd"
	controllerKey = "controller"
)

func init() {
	// The init function only unwraps the controller New built: the
	// registration is process-wide, the controller is per server.
	err := auth.Register(authName, func(options map[string]any) (auth.AccessController, error) {
		ac, ok := options[controllerKey].(*htpasswdController)
		if !ok {
			return nil, fmt.Errorf("%s: missing controller", authName)
		}
		return ac, nil
	})
	if err != nil {
		panic(err)
	}
}

// htpasswdController is a distribution auth.AccessController backed by
// the caching htpasswd.Authenticator. Any authenticated user may push and
// pull everything (the same policy as distribution's htpasswd controller).
type htpasswdController struct {
	realm  string
	authn  *htpasswd.Authenticator
	logger *slog.Logger
}

func newHtpasswdController(path, realm string, logger *slog.Logger) (*htpasswdController, error) {
	a, err := htpasswd.NewAuthenticator(path)
	if err != nil {
		return nil, err
	}
	return &htpasswdController{realm: realm, authn: a, logger: logger}, nil
}

func (c *htpasswdController) Authorized(r *http.Request, _ ...auth.Access) (*auth.Grant, error) {
	if isInProcess(r) {
		return &auth.Grant{User: auth.UserInfo{Name: "airlock (in-process)"}}, nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, challenge{realm: c.realm, err: auth.ErrInvalidCredential}
	}
	if err := c.authn.Authenticate(user, pass); err != nil {
		// Only requests that carried credentials are logged: every client
		// first probes anonymously, which is not worth a line.
		if errors.Is(err, htpasswd.ErrBadCredentials) {
			c.logger.Warn("authentication failed", "user", user, "remote", r.RemoteAddr)
		} else {
			c.logger.Error("checking credentials", "user", user, "err", err)
		}
		// Never echo the password; the user name is safe to log.
		return nil, challenge{realm: c.realm, err: fmt.Errorf("user %q: %w", user, auth.ErrAuthenticationFailure)}
	}
	return &auth.Grant{User: auth.UserInfo{Name: user}}, nil
}

// challenge makes distribution answer 401 with a Basic challenge.
type challenge struct {
	realm string
	err   error
}

func (ch challenge) SetHeaders(_ *http.Request, w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", ch.realm))
}

func (ch challenge) Error() string {
	return fmt.Sprintf("basic auth for realm %q: %v", ch.realm, ch.err)
}
