package alert

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders an incident and its timeline for a postmortem.
func (i Incident) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Incident %s\n\n", i.Key)
	fmt.Fprintf(&b, "- **Scope:** %s", i.Scope)
	if i.Subject != "" {
		fmt.Fprintf(&b, " (%s)", i.Subject)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- **Condition:** %s\n", i.Condition)
	fmt.Fprintf(&b, "- **Opened:** %s\n", i.Opened.UTC().Format(time.RFC3339))
	if i.Open() {
		fmt.Fprintf(&b, "- **Resolved:** not yet (open for %s)\n", time.Since(i.Opened).Round(time.Second))
	} else {
		fmt.Fprintf(&b, "- **Resolved:** %s (after %s)\n", i.Resolved.UTC().Format(time.RFC3339), i.Resolved.Sub(i.Opened).Round(time.Second))
	}
	fmt.Fprintf(&b, "- **Regions:** %s\n- **Products:** %s\n", joinNames(i.Regions), joinNames(i.Products))
	fmt.Fprintf(&b, "- **Paged:** %v", i.Triggered)
	if i.Silenced {
		b.WriteString(" (silenced)")
	}
	if i.AbsorbedInto != "" {
		fmt.Fprintf(&b, "; part of %s", i.AbsorbedInto)
	}
	b.WriteString("\n")
	if len(i.Targets) > 0 {
		b.WriteString("\n## Targets\n\n")
		for _, t := range i.Targets {
			if why := i.Reasons[t]; why != "" {
				fmt.Fprintf(&b, "- `%s`: %s\n", t, mdCell(why))
			} else {
				fmt.Fprintf(&b, "- `%s`\n", t)
			}
		}
	}
	if len(i.Updates) > 0 {
		b.WriteString("\n## Updates\n\n| time (UTC) | status | update | by |\n| --- | --- | --- | --- |\n")
		for _, u := range i.Updates {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", u.At.UTC().Format("2006-01-02 15:04:05"), u.Status, mdCell(u.Text), mdCell(u.Author))
		}
	}
	b.WriteString("\n## Timeline\n\n| time (UTC) | event | detail |\n| --- | --- | --- |\n")
	for _, e := range i.Timeline {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Kind, mdCell(e.Text))
	}
	return b.String()
}

// mdCell keeps a table cell on one line and its pipes literal.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
