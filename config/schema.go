package config

import _ "embed" // the JSON Schema of the config

//go:generate go run ./schemagen -o picket.schema.json -src .,../probe/expect

// JSONSchema is the JSON Schema (draft-07) of the config file, generated from File and
// its types by `go generate ./config` (config/schemagen), so that editors complete and
// check keys (yaml-language-server: see the comment atop examples/*.yaml). A test keeps
// it current. Load stays the authority: the schema knows the keys and their types, not
// every rule (a region named but not defined, a template that does not render).
//
//go:embed picket.schema.json
var JSONSchema []byte
