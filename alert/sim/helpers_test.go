package sim

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stateDir is a fresh directory for the sim's stores: on tmpfs when the machine has
// one (an fsync there costs nothing), else the test's temp dir.
func stateDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "picket-sim-")
		if err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// newSim starts a sim for a test and closes it at the end.
func newSim(t testing.TB, o Options) *Sim {
	t.Helper()
	if o.Dir == "" {
		o.Dir = stateDir(t)
	}
	if o.Label == "" {
		o.Label = t.Name()
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// basicPlatform: regions r1..rN, products p1..pM with one journey "j", one pager and
// a chat for everything, a webhook as fallback.
func basicPlatform(regions, products int) Platform {
	p := Platform{}
	for i := 1; i <= regions; i++ {
		p.Regions = append(p.Regions, regionName(i))
	}
	for i := 1; i <= products; i++ {
		p.Products = append(p.Products, Product{Name: productName(i), Priority: 1, Journeys: []Journey{{Name: "j"}}})
	}
	p.Notifiers = []Notifier{
		{Name: "pd", Kind: KindPagerDuty, Receiver: "pager"},
		{Name: "chat", Kind: KindSlack, Receiver: "chat"},
		{Name: "hook", Kind: KindWebhook, Receiver: "hook"},
	}
	p.Routes = []Route{{Match: config.Match{}, Notify: []string{"pd", "chat"}, Fallback: []string{"hook"}}}
	return p
}

func regionName(i int) string  { return "r" + string(rune('0'+i)) }
func productName(i int) string { return "p" + string(rune('0'+i)) }

// run runs the sim and fails the test on a violation.
func run(t testing.TB, s *Sim, d time.Duration) {
	t.Helper()
	if err := s.RunFor(d); err != nil {
		t.Fatal(err)
	}
}

// transitions are a receiver's key openings and closings, as "OPEN key" / "CLOSE key".
func transitions(r *Receiver) []string {
	var out []string
	for _, ev := range r.Events() {
		switch {
		case ev.Opened:
			out = append(out, "OPEN "+ev.Key)
		case ev.Closed:
			out = append(out, "CLOSE "+ev.Key)
		}
	}
	return out
}
