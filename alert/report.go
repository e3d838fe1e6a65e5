package alert

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
	"github.com/picket-dev/picket/probe/expect"
)

// Report is the output of one `picket check` (the JSON shape is a contract, DESIGN.md).
type Report struct {
	Vantage string         `json:"vantage"`
	Started time.Time      `json:"started"`
	Results []ReportResult `json:"results"`
	Summary ReportSummary  `json:"summary"`
	Scope   Summary        `json:"scope"`
	// Pages is what became of each notification of `check --page` (absent without it).
	Pages []notify.Outcome `json:"pages,omitzero"`
}

type ReportResult struct {
	Target     string       `json:"target"`
	Product    string       `json:"product"`
	Journey    string       `json:"journey"`
	Region     string       `json:"region"`
	Status     string       `json:"status"`
	DurationMS float64      `json:"duration_ms"`
	Error      string       `json:"error"`
	Tries      int          `json:"tries"`
	Steps      []ReportStep `json:"steps"`
	// CertWarnings are certificates near expiry (cert_min_days): warnings that leave
	// status as it is (an up target with one is still up).
	CertWarnings []ReportCertWarning `json:"cert_warnings,omitempty"`
}

// ReportCertWarning is one step's certificate near expiry.
type ReportCertWarning struct {
	Step     string    `json:"step"`
	Expires  time.Time `json:"expires"`
	DaysLeft int       `json:"days_left"`
	MinDays  int       `json:"min_days"`
	Subject  string    `json:"subject,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	Message  string    `json:"message"`
}

type ReportStep struct {
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Status     string            `json:"status"`
	HTTPStatus int               `json:"http_status"`
	DurationMS float64           `json:"duration_ms"`
	Phases     ReportPhases      `json:"phases"`
	Error      string            `json:"error"`
	Attempts   int               `json:"attempts"`
	PollWaitMS float64           `json:"poll_wait_ms,omitempty"`
	CertExpiry *time.Time        `json:"cert_expiry,omitempty"`
	Info       map[string]string `json:"info,omitempty"`
}

type ReportPhases struct {
	DNSMS        float64 `json:"dns_ms"`
	ConnectMS    float64 `json:"connect_ms"`
	TLSMS        float64 `json:"tls_ms"`
	TTFBMS       float64 `json:"ttfb_ms"`
	ProcessingMS float64 `json:"processing_ms"`
	TransferMS   float64 `json:"transfer_ms"`
}

type ReportSummary struct {
	Up       int `json:"up"`
	Degraded int `json:"degraded"`
	Down     int `json:"down"`
	// CertWarnings counts the results with a certificate near expiry, whatever their status.
	CertWarnings int `json:"cert_warnings"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BuildReport assembles a check's report; the scope treats every down target as failing.
func BuildReport(cfg *config.Config, started time.Time, results []probe.Result) Report {
	rep := Report{Vantage: cfg.Vantage, Started: started.UTC(), Results: make([]ReportResult, 0, len(results))}
	var failing []Failing
	for _, r := range results {
		rep.Results = append(rep.Results, reportResult(r))
		if len(r.CertWarnings) > 0 {
			rep.Summary.CertWarnings++
		}
		switch r.Status {
		case probe.StatusUp:
			rep.Summary.Up++
		case probe.StatusDegraded:
			rep.Summary.Degraded++
		default:
			rep.Summary.Down++
			failing = append(failing, Failing{Target: r.Target, Product: r.Product, Region: r.Region})
		}
	}
	rep.Scope = Summarize(Classify(cfg.BlastRadius, failing))
	return rep
}

func reportResult(r probe.Result) ReportResult {
	rr := ReportResult{
		Target: r.Target, Product: r.Product, Journey: r.Journey, Region: r.Region,
		Status: string(r.Status), DurationMS: ms(r.Duration), Error: r.Error, Tries: r.Tries,
		Steps: make([]ReportStep, 0, len(r.Steps)),
	}
	for _, s := range r.Steps {
		st := ReportStep{
			Name: s.Name, Kind: s.Kind, Status: string(s.Status), HTTPStatus: s.HTTPStatus,
			DurationMS: ms(s.Duration), Error: s.Error, Attempts: s.Attempts, PollWaitMS: ms(s.PollWait), Info: s.Info,
			Phases: ReportPhases{
				DNSMS: ms(s.Phases.DNS), ConnectMS: ms(s.Phases.Connect), TLSMS: ms(s.Phases.TLS),
				TTFBMS: ms(s.Phases.TTFB), ProcessingMS: ms(s.Phases.Processing), TransferMS: ms(s.Phases.Transfer),
			},
		}
		if !s.CertExpiry.IsZero() {
			t := s.CertExpiry.UTC()
			st.CertExpiry = &t
		}
		rr.Steps = append(rr.Steps, st)
	}
	for _, w := range r.CertWarnings {
		rr.CertWarnings = append(rr.CertWarnings, ReportCertWarning{Step: w.Step, Expires: w.NotAfter.UTC(), DaysLeft: w.DaysLeft,
			MinDays: w.MinDays, Subject: w.Subject, Issuer: w.Issuer, Message: w.Message()})
	}
	return rr
}

// tableWidth keeps the table readable on an 80-column terminal.
const tableWidth = 80

// WriteTable prints the report grouped by product and region, then every reason in full.
func WriteTable(w io.Writer, rep Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-7s %-20s %-8s %8s  %s\n", "PRODUCT", "REGION", "JOURNEY", "STATUS", "TIME", "REASON")
	lastProduct := ""
	for _, r := range rep.Results {
		product := r.Product
		if product == lastProduct {
			product = ""
		}
		lastProduct = r.Product
		status := r.Status
		if status == string(probe.StatusDown) {
			status = "DOWN"
		}
		reason := r.Error
		if reason == "" && len(r.CertWarnings) > 0 {
			reason = "cert: " + expect.Days(r.CertWarnings[0].DaysLeft) + " left" // in full under Reasons
		}
		line := fmt.Sprintf("%-12s %-7s %-20s %-8s %8s  %s", cut(product, 12), cut(r.Region, 7), cut(r.Journey, 20),
			status, humanMS(r.DurationMS), reason)
		b.WriteString(strings.TrimRight(cut(line, tableWidth), " "))
		b.WriteByte('\n')
	}
	var reasons []ReportResult
	for _, r := range rep.Results {
		if r.Error != "" || len(r.CertWarnings) > 0 {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) > 0 {
		b.WriteString("\nReasons:\n")
		for _, r := range reasons {
			fmt.Fprintf(&b, "  %s (%s", r.Target, r.Status)
			if r.Tries > 1 {
				fmt.Fprintf(&b, ", %d tries", r.Tries)
			}
			b.WriteString(")\n")
			for _, line := range wrap(r.Error, tableWidth-6) {
				fmt.Fprintf(&b, "      %s\n", line)
			}
			for _, w := range r.CertWarnings {
				for _, line := range wrap("warning: "+w.Message, tableWidth-6) {
					fmt.Fprintf(&b, "      %s\n", line)
				}
			}
		}
	}
	footer := fmt.Sprintf("%d up, %d degraded, %d down", rep.Summary.Up, rep.Summary.Degraded, rep.Summary.Down)
	switch n := rep.Summary.CertWarnings; {
	case n == 1:
		footer += "; 1 certificate warning"
	case n > 1:
		footer += fmt.Sprintf("; %d certificate warnings", n)
	}
	footer += scopeLine(rep.Scope)
	b.WriteString("\n")
	for _, line := range wrap(footer, tableWidth) {
		b.WriteString(line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// scopeLine is the footer's scope: the widest scope by name with what it covers, then
// the failing targets outside it, so a stray journey is neither lost nor folded in.
func scopeLine(s Summary) string {
	var line string
	switch s.Kind {
	case "none", "":
		return ""
	case ScopeRegion:
		line = fmt.Sprintf("; scope REGION %s (%s)", strings.Join(s.Regions, ", "), strings.Join(s.Products, ", "))
	case ScopeProduct:
		line = fmt.Sprintf("; scope PRODUCT %s (%s)", strings.Join(s.Products, ", "), strings.Join(s.Regions, ", "))
	default: // global, target: several of each
		line = fmt.Sprintf("; scope %s (regions: %s; products: %s)", strings.ToUpper(s.Kind),
			strings.Join(s.Regions, ", "), strings.Join(s.Products, ", "))
	}
	switch s.OtherTargets {
	case 0:
	case 1:
		line += "; also 1 other failing target"
	default:
		line += fmt.Sprintf("; also %d other failing targets", s.OtherTargets)
	}
	return line
}

func humanMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.0fms", v)
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func wrap(s string, width int) []string {
	var lines []string
	for len([]rune(s)) > width {
		r := []rune(s)
		i := width
		for i > width/2 && r[i] != ' ' {
			i--
		}
		if r[i] != ' ' {
			i = width
		}
		lines = append(lines, strings.TrimSpace(string(r[:i])))
		s = strings.TrimSpace(string(r[i:]))
	}
	if s != "" {
		lines = append(lines, s)
	}
	return lines
}
