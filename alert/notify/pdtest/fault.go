package pdtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/picket-dev/picket/internal/loopback"
)

// Fault says how to answer the next requests to the enqueue endpoint, to
// rehearse what the real service does on a bad day.
type Fault struct {
	Status     int           // e.g. 400, 429, 500, 503; 0 = behave normally (after Delay)
	RetryAfter time.Duration // sent as Retry-After seconds with 429 and 503
	Delay      time.Duration // sleep before answering (bounded by the request ctx and Close)
	Close      bool          // hijack and close the connection without answering
	Count      int           // how many requests it applies to; 0 = until cleared
}

// faultJSON is Fault on the wire: durations as Go strings ("2s"), so that a
// test in another process can write one by hand.
type faultJSON struct {
	Status     int    `json:"status,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	Delay      string `json:"delay,omitempty"`
	Close      bool   `json:"close,omitempty"`
	Count      int    `json:"count,omitempty"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Fault) MarshalJSON() ([]byte, error) {
	w := faultJSON{Status: f.Status, Close: f.Close, Count: f.Count}
	if f.RetryAfter != 0 {
		w.RetryAfter = f.RetryAfter.String()
	}
	if f.Delay != 0 {
		w.Delay = f.Delay.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads durations as Go duration strings and checks the fault
// can be served.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var w faultJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("fault: expected {status, retry_after, delay, close, count}: %w", err)
	}
	out, err := w.fault()
	if err != nil {
		return err
	}
	*f = out
	return nil
}

// fault parses and validates the wire form.
func (w faultJSON) fault() (Fault, error) {
	f := Fault{Status: w.Status, Close: w.Close, Count: w.Count}
	var err error
	if f.RetryAfter, err = parseDuration("retry_after", w.RetryAfter); err != nil {
		return Fault{}, err
	}
	if f.Delay, err = parseDuration("delay", w.Delay); err != nil {
		return Fault{}, err
	}
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	return f, nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault: %s: expected a Go duration such as \"2s\", got %q: %w", field, s, err)
	}
	return d, nil
}

func (f Fault) validate() error {
	switch {
	case f.Status != 0 && !validFaultStatus(f.Status):
		return fmt.Errorf("fault: status: expected 0 or 200..599, got %d", f.Status)
	case f.RetryAfter < 0 || f.Delay < 0:
		return fmt.Errorf("fault: durations must not be negative, got retry_after %s and delay %s", f.RetryAfter, f.Delay)
	case f.Count < 0:
		return fmt.Errorf("fault: count: expected 0 (until cleared) or more, got %d", f.Count)
	}
	return nil
}

func validFaultStatus(code int) bool { return code >= 200 && code <= 599 }

// active reports whether the fault changes anything at all.
func (f Fault) active() bool { return f.Status != 0 || f.Delay > 0 || f.Close }

// SetFault replaces the current fault. A status outside 200..599 is answered
// as 500, since net/http cannot send it.
func (r *Receiver) SetFault(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = f
	r.faultLeft = f.Count
}

// ClearFault makes the receiver behave normally again.
func (r *Receiver) ClearFault() { r.SetFault(Fault{}) }

// currentFault returns the fault in force, for the control surface.
func (r *Receiver) currentFault() Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.fault
	if f.Count > 0 {
		f.Count = r.faultLeft
	}
	return f
}

// takeFault returns the fault for one request and uses up one of its Count;
// it is taken when the request arrives so concurrent requests each get one.
func (r *Receiver) takeFault() (Fault, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.fault
	if !f.active() {
		return Fault{}, false
	}
	if f.Count > 0 {
		r.faultLeft--
		if r.faultLeft <= 0 {
			r.fault = Fault{}
		}
	}
	return f, true
}

// serveFault applies f to one request. It reports whether the request was
// answered (or dropped); false means "carry on normally", which is what a
// pure Delay does once it has slept.
func (r *Receiver) serveFault(w http.ResponseWriter, req *http.Request, f Fault) bool {
	if !loopback.Pause(req.Context(), f.Delay, r.srv.Closing()) {
		// The client gave up, or the receiver is closing: then cut the
		// connection as a dying server would. Returning without a word would
		// make net/http send an empty 200.
		if req.Context().Err() == nil {
			r.dropConnection(w)
		}
		return true
	}
	switch {
	case f.Close:
		r.dropConnection(w)
		return true
	case f.Status == 0:
		return false
	}
	status := f.Status
	if !validFaultStatus(status) {
		status = http.StatusInternalServerError
	}
	if f.RetryAfter > 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
	}
	writeJSON(w, status, faultBody(status))
	r.log.Info("pdtest: answered with injected fault", "status", status, "path", req.URL.Path)
	return true
}

// dropConnection closes the TCP connection without a response, as a load
// balancer that resets it would.
func (r *Receiver) dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Only HTTP/1 can be hijacked; this server speaks nothing else, so this
		// is a bug worth seeing rather than a silent normal answer.
		r.log.Error("pdtest: cannot drop connection", "err", err)
		http.Error(w, "pdtest: cannot hijack connection", http.StatusInternalServerError)
		return
	}
	_ = conn.Close()
	r.log.Info("pdtest: dropped connection (injected fault)")
}

// faultBody is the body PagerDuty sends with each kind of failure.
func faultBody(status int) apiResponse {
	switch {
	case status == http.StatusBadRequest:
		return apiResponse{Status: statusInvalidEvent, Message: messageInvalidEvent, Errors: []string{"injected fault (pdtest)"}}
	case status == http.StatusTooManyRequests:
		return apiResponse{Status: "throttle exceeded", Message: "Requests for this service are arriving too quickly.  Please retry later."}
	default:
		return apiResponse{Status: http.StatusText(status), Message: "injected fault (pdtest)"}
	}
}
