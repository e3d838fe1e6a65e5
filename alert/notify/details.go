package notify

import "unicode/utf8"

// Cut shortens s to n runes, ending in "…" when cut: the channels' bound on each part
// of a message they render.
func Cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// TargetsOf reads details["targets"] (each target's id, status, since, error) as the
// engine hands it ([]map[string]any) or as the outbox's JSON gives it back ([]any of
// maps), for the channels that list the affected targets; nil for anything else.
func TargetsOf(v any) []map[string]any {
	switch list := v.(type) {
	case []map[string]any:
		return list
	case []any:
		out := make([]map[string]any, 0, len(list))
		for _, item := range list {
			if m, ok := item.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}
