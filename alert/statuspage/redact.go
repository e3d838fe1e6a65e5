package statuspage

import (
	"encoding/json"
	"fmt"

	"github.com/picket-dev/picket/internal/scrub"
)

// scrubbed returns v with the token taken out of every string in it, by way of its
// JSON form. The page derives text from what it is given (tooltips are cut short,
// keys have "/" turned to "~"), which would hide a token from the final scrub; cleaning
// the input first leaves nothing to derive from. Without a token, v is returned as is.
func scrubbed[T any](x *scrub.Redactor, v T) (T, error) {
	if x == nil {
		return v, nil
	}
	var out T
	raw, err := json.Marshal(v)
	if err != nil {
		return out, fmt.Errorf("scrub %T: encode: %w", v, err)
	}
	if err := json.Unmarshal(x.Bytes(raw), &out); err != nil {
		return out, fmt.Errorf("scrub %T: decode: %w", v, err)
	}
	return out, nil
}
