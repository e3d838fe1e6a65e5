package probetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"time"
)

type errorBody struct {
	Error string `json:"error"`
}

func logAccepted(id string) any {
	return struct {
		ID       string `json:"id"`
		Accepted bool   `json:"accepted"`
	}{id, true}
}

func eventAccepted(id string) any {
	return struct {
		ID string `json:"id"`
	}{id}
}

// productFault is the fault the product itself shows (wrong_body, stale); the
// front door has already acted out the rest.
func (rs *regionServer) productFault(product string) FaultKind {
	f, _ := rs.p.faultTable().resolve(rs.name, product)
	return f.Kind
}

// handleWrite accepts any JSON object and makes it readable after the ingest
// delay, unless the product is stale.
func (rs *regionServer) handleWrite(product string, store *recordStore, accepted func(id string) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fields, status, err := readObject(r)
		if err != nil {
			writeJSON(w, status, errorBody{err.Error()})
			return
		}
		id := newID()
		// Stale: accepted and lost, never stored, so the read-back stays 404.
		// Wrong body shows on the read-back, where a probe compares content.
		if rs.productFault(product) != FaultStale {
			store.put(id, record{fields: fields, readableAt: time.Now().Add(rs.p.ingestDelay)})
		}
		writeJSON(w, http.StatusAccepted, accepted(id))
	}
}

// handleRead echoes a readable record's fields with its id and region.
func (rs *regionServer) handleRead(product string, store *recordStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if rs.productFault(product) == FaultWrongBody {
			writeJSON(w, http.StatusOK, map[string]string{"id": id, "m": "something else"})
			return
		}
		fields, ok := store.get(id, time.Now())
		if !ok {
			writeJSON(w, http.StatusNotFound, errorBody{"not found"})
			return
		}
		out := make(map[string]any, len(fields)+2)
		for k, v := range fields {
			out[k] = v
		}
		out["id"] = id
		out["region"] = rs.name
		writeJSON(w, http.StatusOK, out)
	}
}

// readObject reads a JSON object body; on failure it says which status fits.
func readObject(r *http.Request) (map[string]json.RawMessage, int, error) {
	data, status, err := readBody(r)
	if err != nil {
		return nil, status, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("expected a JSON object body: %w", err)
	}
	if fields == nil {
		return nil, http.StatusBadRequest, errors.New("expected a JSON object body, got null")
	}
	return fields, 0, nil
}

func readBody(r *http.Request) ([]byte, int, error) {
	data, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("expected a body of at most %d bytes", tooBig.Limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return data, 0, nil
}

// handleMetricsWrite accepts any JSON document as a batch of series.
func (rs *regionServer) handleMetricsWrite(w http.ResponseWriter, r *http.Request) {
	data, status, err := readBody(r)
	if err != nil {
		writeJSON(w, status, errorBody{err.Error()})
		return
	}
	if !json.Valid(data) {
		writeJSON(w, http.StatusBadRequest, errorBody{"expected a JSON body of series"})
		return
	}
	if rs.productFault("metrics") == FaultWrongBody {
		writeJSON(w, http.StatusAccepted, struct{}{})
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Accepted bool `json:"accepted"`
	}{true})
}

type metricSample struct {
	Metric string `json:"metric"`
	Value  int    `json:"value"`
}

type queryResult struct {
	Status string `json:"status"`
	Data   *struct {
		Result []metricSample `json:"result"`
	} `json:"data"`
}

// handleMetricsQuery knows one series, up=1; other names have no samples.
func (rs *regionServer) handleMetricsQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if q == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"status": "error", "error": "expected query parameter q"})
		return
	}
	res := queryResult{Status: "ok", Data: &struct {
		Result []metricSample `json:"result"`
	}{Result: []metricSample{}}}
	switch rs.productFault("metrics") {
	case FaultWrongBody:
		res = queryResult{Status: "error"}
	case FaultStale:
		// Samples stopped arriving: the query works but finds nothing.
	default:
		if q == "up" {
			res.Data.Result = append(res.Data.Result, metricSample{Metric: "up", Value: 1})
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// webPages are rendered once per region: the hot path only writes bytes.
type webPages struct {
	index, login, broken []byte
}

func newWebPages(region string) webPages {
	title := "Platform " + html.EscapeString(region)
	return webPages{
		index: []byte("<!doctype html>\n<html><head><title>" + title + "</title></head>\n" +
			"<body><h1>" + title + "</h1><p><a href=\"/login\">Log in</a></p></body></html>\n"),
		login: []byte("<!doctype html>\n<html><head><title>" + title + " - Log in</title></head>\n" +
			"<body><form method=\"post\" action=\"/login\">\n" +
			"<label>User <input name=\"user\"></label>\n" +
			"<label>Password <input name=\"password\" type=\"password\"></label>\n" +
			"<button type=\"submit\">Log in</button>\n</form></body></html>\n"),
		broken: []byte("<!doctype html>\n<html><body><p>Something went wrong.</p></body></html>\n"),
	}
}

func (rs *regionServer) handleWebPage(page []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := page
		if rs.productFault("web") == FaultWrongBody {
			body = rs.pages.broken
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body)
	}
}

// handleHealthz sees only region-wide faults, like a load balancer's health check.
func (rs *regionServer) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if rs.productFault("") == FaultWrongBody {
		writeJSON(w, http.StatusOK, map[string]string{"status": "down"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
