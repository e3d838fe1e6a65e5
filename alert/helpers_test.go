package alert

import (
	"time"

	"github.com/picket-dev/picket/probe"
)

func resultOf(id, status string) probe.Result {
	p, r := splitTarget(id)
	res := probe.Result{Target: id, Product: p, Region: r, Status: probe.Status(status), Started: time.Now(), Tries: 1}
	if status != "up" {
		res.Error = "step x: status 503, want 2xx"
	}
	return res
}
