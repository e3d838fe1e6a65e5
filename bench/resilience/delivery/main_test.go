package delivery

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// resilienceEnv gates the suite: these tests run the daemon for a minute or more.
const resilienceEnv = "PICKET_RESILIENCE"

func requireResilience(t *testing.T) {
	t.Helper()
	if os.Getenv(resilienceEnv) != "1" {
		t.Skipf("set %s=1 to run (make resilience): the resilience suite runs the daemon for minutes", resilienceEnv)
	}
}
