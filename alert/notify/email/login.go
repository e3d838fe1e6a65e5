package email

import (
	"errors"
	"fmt"
	"net/smtp"
	"strings"

	"github.com/picket-dev/picket/internal/scrub"
)

// loginAuth is the LOGIN mechanism (draft-murchison-sasl-login), which net/smtp does
// not have and Microsoft 365 and many relays still ask for: the server prompts
// "Username:" and "Password:" and the client answers each. No initial response is
// sent, so a server that prompts for both and one that would take the user name at
// once both work. Like net/smtp's PLAIN, it refuses a connection without TLS unless
// the server is this machine.
type loginAuth struct {
	username, password, host string
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch prompt := strings.ToLower(strings.TrimSpace(string(fromServer))); {
	case strings.HasPrefix(prompt, "username"), strings.HasPrefix(prompt, "user name"):
		return []byte(a.username), nil
	case strings.HasPrefix(prompt, "password"):
		return []byte(a.password), nil
	default:
		return nil, fmt.Errorf("LOGIN: expected a Username: or Password: prompt, got %q", scrub.Excerpt(fromServer, 40))
	}
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
