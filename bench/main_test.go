package bench

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	ServeChildIfAsked() // the harness re-executes this binary as its server child
	goleak.VerifyTestMain(m)
}
