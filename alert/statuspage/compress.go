package statuspage

import (
	"compress/gzip"
	"net/http"
	"strings"
)

// gzipped compresses answers for clients that take gzip: the page's uptime bars are
// hundreds of near-identical elements, which gzip shrinks about tenfold, and this page
// is read when networks are at their worst.
func gzipped(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter)) {
	if r.Method == http.MethodHead || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		serve(w)
		return
	}
	gw := &gzipWriter{ResponseWriter: w}
	defer gw.finish()
	serve(gw)
}

func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// gzipWriter compresses the body of an answer that has one.
type gzipWriter struct {
	http.ResponseWriter
	gz          *gzip.Writer
	wroteHeader bool
	plain       bool // no body to compress (304, 204) or already encoded
}

func (g *gzipWriter) WriteHeader(code int) {
	if g.wroteHeader {
		return
	}
	g.wroteHeader = true
	h := g.Header()
	g.plain = code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || h.Get("Content-Encoding") != ""
	if !g.plain {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		h.Del("Content-Length")
		g.gz = gzip.NewWriter(g.ResponseWriter)
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.plain {
		return g.ResponseWriter.Write(p)
	}
	return g.gz.Write(p)
}

func (g *gzipWriter) finish() {
	if g.gz != nil {
		_ = g.gz.Close()
	}
}
