package expect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// statusSet is a compiled status list: classes ("2xx") and exact codes.
type statusSet struct {
	classes [6]bool // index 1..5 for 1xx..5xx
	codes   []int
	want    string // "200 or 201", for failure messages
}

func (s *statusSet) matches(code int) bool {
	if class := code / 100; code >= 100 && class <= 5 && s.classes[class] {
		return true
	}
	for _, c := range s.codes {
		if c == code {
			return true
		}
	}
	return false
}

// compileStatus parses every entry and reports all bad ones at once.
func compileStatus(entries []string) (*statusSet, error) {
	var s statusSet
	var shown []string
	var errs []error
	for _, raw := range entries {
		entry := strings.ToLower(strings.TrimSpace(raw))
		if class, ok := statusClass(entry); ok {
			s.classes[class] = true
			shown = append(shown, entry)
			continue
		}
		code, err := strconv.Atoi(entry)
		if err != nil || code < 100 || code > 599 {
			errs = append(errs, fmt.Errorf("invalid status %q: want a code 100-599 or a class 1xx-5xx", raw))
			continue
		}
		s.codes = append(s.codes, code)
		shown = append(shown, strconv.Itoa(code))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.want = joinOr(shown)
	return &s, nil
}

// statusClass parses "1xx".."5xx".
func statusClass(entry string) (int, bool) {
	if len(entry) != 3 || entry[1:] != "xx" || entry[0] < '1' || entry[0] > '5' {
		return 0, false
	}
	return int(entry[0] - '0'), true
}

// joinOr writes a list the way people say it: "a", "a or b", "a, b or c".
func joinOr(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
