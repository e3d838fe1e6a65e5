package statuspage

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"

	"github.com/picket-dev/picket/probe"
)

// assets are compiled in: the page must work when the internet (and any CDN) is half down.
//
//go:embed templates/page.html templates/public.html static/app.js static/style.css static/public.css
var assets embed.FS

type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

var staticTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// loadStatic reads the embedded files once; embed has no modification times, so the
// ETag is a hash of the content.
func loadStatic() map[string]staticFile {
	out := map[string]staticFile{}
	entries, _ := fs.ReadDir(assets, "static")
	for _, e := range entries {
		body, err := fs.ReadFile(assets, path.Join("static", e.Name()))
		if err != nil {
			continue
		}
		sum := sha256.Sum256(body)
		out[e.Name()] = staticFile{
			body: body, contentType: staticTypes[path.Ext(e.Name())],
			etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
	}
	return out
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := h.static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	serveFile(w, r, f)
}

// serveFile answers an embedded file, or 304 when the client has it.
func serveFile(w http.ResponseWriter, r *http.Request, f staticFile) {
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Cache-Control", "no-cache") // revalidate: a new binary may bring new files
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(f.body)
}

// serveScreenshot serves one failure screenshot from the screenshot folder; only names
// a prober gives (no path), and 404 without a folder.
func (h *Handler) serveScreenshot(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if h.shots == "" || !probe.ScreenshotName.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(h.shots, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=86400") // a screenshot never changes
	http.ServeContent(w, r, name, fi.ModTime(), f)
}
