package loopback

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServerServesUntilClose: a stand-in's server answers on loopback once started,
// refuses any other address, and Close (twice, or before Start) stops it and closes
// Closing.
func TestServerServesUntilClose(t *testing.T) {
	if _, err := NewServer("test", Options{Addr: "192.0.2.1:0"}); err == nil {
		t.Fatal("NewServer on a non-loopback address succeeded")
	}
	s, err := NewServer("test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("answer %q, want ok", body)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-s.Closing():
	default:
		t.Error("Closing still open after Close")
	}
	unstarted, err := NewServer("test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstarted.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
}

func TestPauseEndsEarlyOnCtxOrClosing(t *testing.T) {
	if !Pause(t.Context(), 0, nil) || !Pause(t.Context(), time.Millisecond, nil) {
		t.Error("Pause of 0 or 1 ms did not report the wait done")
	}
	closing := make(chan struct{})
	close(closing)
	if Pause(t.Context(), time.Hour, closing) {
		t.Error("Pause with closing closed waited out the hour")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Pause(ctx, time.Hour, nil) {
		t.Error("Pause with ctx done waited out the hour")
	}
}
