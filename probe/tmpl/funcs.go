package tmpl

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"text/template"
	"time"
)

// Digest is a hash or MAC. It prints as lowercase hex; base64 and hex encode its raw
// bytes, and hmac takes it as a key, so that signing chains (AWS SigV4's derived keys)
// can be written in a template.
type Digest []byte

func (d Digest) String() string { return hex.EncodeToString(d) }

// signing are the helpers for signed requests, added to text/template's own:
//
//	{{sha256 .vars.body}}                               hex SHA-256
//	{{hmac "sha256" .secret.key .run.id}}                hex HMAC (sha1, sha256, sha512)
//	{{hmac "sha256" .secret.key .run.id | base64}}       the MAC's bytes in base64
//	{{base64 "user:pass"}}, {{hex "abc"}}                 encodings of a string's bytes
//	{{now.Unix}}, {{now.UTC.Format "20060102T150405Z"}}  the time of rendering
var signing = template.FuncMap{
	"sha256": func(v any) (Digest, error) { return digest(sha256.New(), v) },
	"hmac":   hmacOf,
	"base64": func(v any) (string, error) {
		b, err := bytesOf(v)
		return base64.StdEncoding.EncodeToString(b), err
	},
	"hex": func(v any) (string, error) {
		b, err := bytesOf(v)
		return hex.EncodeToString(b), err
	},
	"now": time.Now,
}

func hmacOf(alg string, key, msg any) (Digest, error) {
	newHash, ok := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}[alg]
	if !ok {
		return nil, fmt.Errorf("hmac: unknown algorithm %q (want sha1, sha256 or sha512)", alg)
	}
	k, err := bytesOf(key)
	if err != nil {
		return nil, err
	}
	return digest(hmac.New(newHash, k), msg)
}

func digest(h hash.Hash, v any) (Digest, error) {
	b, err := bytesOf(v)
	if err != nil {
		return nil, err
	}
	h.Write(b)
	return h.Sum(nil), nil
}

// bytesOf takes a string's bytes, or a Digest's raw bytes.
func bytesOf(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case Digest:
		return v, nil
	case []byte:
		return v, nil
	case fmt.Stringer:
		return []byte(v.String()), nil
	case int, int64, float64, bool:
		return fmt.Append(nil, v), nil
	}
	return nil, fmt.Errorf("want a string or a digest, got %T", v)
}
