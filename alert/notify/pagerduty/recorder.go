package pagerduty

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/picket-dev/picket/alert/notify"
)

// recorder is the pagerduty.HTTPClient of one call: it sends through the real client,
// and keeps what go-pagerduty would otherwise flatten or drop: the transport error,
// the status, the headers and the body (read up to notify.MaxAnswerBytes, then handed
// back to go-pagerduty from memory). One recorder serves one request.
type recorder struct {
	client *http.Client

	sent         bool
	transportErr error
	status       int
	header       http.Header
	body         []byte
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.sent = true
	req.Header.Set("User-Agent", notify.UserAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		r.transportErr = err
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, notify.MaxAnswerBytes))
	if err != nil {
		// The answer's status came but its body broke off: nothing says PagerDuty
		// kept the event, so this is a transport failure, retried.
		r.transportErr = fmt.Errorf("read answer to status %d: %w", resp.StatusCode, err)
		return nil, r.transportErr
	}
	r.status, r.header, r.body = resp.StatusCode, resp.Header, body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
