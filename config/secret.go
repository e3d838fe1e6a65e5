package config

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/picket-dev/picket/internal/scrub"
)

// redacted is what a secret looks like anywhere it could be printed.
const redacted = scrub.Marker

// Secret holds a value that must never be printed: String, fmt verbs, JSON, YAML and
// slog all show it redacted. Only Reveal gives the value, at the point of use.
type Secret struct{ value string }

// NewSecret wraps a value (tests and built-in configs).
func NewSecret(v string) Secret { return Secret{value: v} }

func (s Secret) Reveal() string               { return s.value }
func (s Secret) IsZero() bool                 { return s.value == "" }
func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalYAML() (any, error)    { return redacted, nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format keeps %v, %+v, %#v, %s and %q from leaking the value.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }

// Secrets are the resolved secrets of a config, and the redactor built from them.
type Secrets struct {
	values   map[string]string
	redactor *scrub.Redactor
}

func newSecrets(values map[string]string) *Secrets {
	vals := make([]string, 0, 3*len(values))
	for _, v := range values {
		// Also as a template's base64 writes it ({{base64 .secret.x}}, Basic auth): an
		// answer that echoes the header must not show it. Unpadded, so a padded form
		// and a URL-safe one are caught too.
		vals = append(vals, v, base64.RawStdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)))
	}
	return &Secrets{values: values, redactor: scrub.New(vals...)}
}

// minRedactLen: a one- or two-letter "secret" would blank out ordinary text; Load
// rejects secrets that short instead.
const minRedactLen = scrub.MinSecretLen

// Redact replaces every secret value in text.
func (s *Secrets) Redact(text string) string {
	if s == nil {
		return text
	}
	return s.redactor.String(text)
}

// Names lists the secrets' names, sorted.
func (s *Secrets) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.values))
	for n := range s.values {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// templateData is the .secret map templates see.
func (s *Secrets) templateData() map[string]string {
	if s == nil {
		return map[string]string{}
	}
	return s.values
}

// resolve reads one secret. The error never contains the value.
func (r *SecretRef) resolve(path func(string) string) (string, error) {
	switch {
	case r.Env != "" && r.File != "":
		return "", fmt.Errorf("give either env or file, not both")
	case r.Env != "":
		v, ok := os.LookupEnv(r.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", r.Env)
		}
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", r.Env)
		}
		return v, nil
	case r.File != "":
		b, err := readSecretFile(path(r.File))
		if err != nil {
			return "", fmt.Errorf("read secret file %s: %w", r.File, unwrapPathErr(err))
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", r.File)
		}
		return v, nil
	}
	return "", fmt.Errorf("want env or file")
}

// MaxSecretFileBytes bounds a secret file: keys and tokens are short, and /dev/zero
// would otherwise be read until memory runs out.
const MaxSecretFileBytes = 64 << 10

// readSecretFile reads a regular file of at most MaxSecretFileBytes. Anything else is
// refused before it is opened: opening a FIFO blocks until a writer comes (validate hung),
// and a device may never end.
func readSecretFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSecretFileBytes {
		return nil, fmt.Errorf("larger than %d bytes; a secret file holds one key or token", MaxSecretFileBytes)
	}
	return b, nil
}
