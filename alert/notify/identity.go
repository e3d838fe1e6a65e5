package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Identifier is implemented by a notifier that can say where it delivers. The outbox
// stores the identity with each entry, so that an entry whose notifier was renamed
// in the config (same kind, same destination) is still delivered, by the new name,
// after a reload or a restart. An identity is stable across restarts and reveals no
// secret: it may be stored, but it is never logged.
type Identifier interface {
	Identity() string
}

// identityDomain keeps these hashes apart from any other SHA-256 of the same text.
const identityDomain = "picket notifier identity v1"

// NewIdentity is the hex SHA-256 of kind and the parts that name a destination (an
// events URL and routing key, a webhook URL). It is one-way: equal destinations can
// be compared, but a routing key or URL cannot be read back from it. Each part is
// length-prefixed, so that two different lists never hash the same text.
func NewIdentity(kind string, destination ...string) string {
	h := sha256.New()
	for _, part := range append([]string{identityDomain, kind}, destination...) {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// identityOf is n's identity, or "" when n cannot say.
func identityOf(n Notifier) string {
	if id, ok := n.(Identifier); ok {
		return id.Identity()
	}
	return ""
}
