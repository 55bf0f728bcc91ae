// Package webasset holds the files of a page (HTML, CSS, JavaScript)
// embedded in the binary, ready to serve from memory: each with its content
// type, a strong ETag, a gzipped copy, and a Cache-Control that fits it.
//
// HTML is revalidated on every visit (no-cache: a storm of shoppers costs a
// 304 from memory each); its references to assets carry a version stamp
// ("?v={{v}}" in the source becomes "?v=<hash of every asset>"), so that
// assets are cached for a year and a new binary is still picked up at once.
package webasset

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strings"
)

// File is one file, ready to serve.
type File struct {
	Name         string
	Body         []byte
	Gzip         []byte // nil when compressing does not pay
	ContentType  string
	ETag         string // quoted, strong
	CacheControl string
}

// Set is the files of one page set, by name ("index.html", "shop.js").
type Set struct {
	files map[string]*File
}

// versionMark is replaced in HTML by the version of the assets.
const versionMark = "{{v}}"

// Load reads every file of fsys (recursively).
func Load(fsys fs.FS) (*Set, error) {
	raw := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		raw[p] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load web assets: %w", err)
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		if !strings.HasSuffix(n, ".html") {
			h.Write([]byte(n))
			h.Write(raw[n])
		}
	}
	version := hex.EncodeToString(h.Sum(nil))[:12]
	s := &Set{files: map[string]*File{}}
	for _, n := range names {
		body := raw[n]
		f := &File{Name: n, ContentType: mime.TypeByExtension(path.Ext(n)), CacheControl: "public, max-age=31536000, immutable"}
		if strings.HasSuffix(n, ".html") {
			body = bytes.ReplaceAll(body, []byte(versionMark), []byte(version))
			f.CacheControl = "no-cache"
		}
		if f.ContentType == "" {
			f.ContentType = "application/octet-stream"
		}
		f.Body = body
		sum := sha256.Sum256(body)
		f.ETag = `"` + hex.EncodeToString(sum[:8]) + `"`
		if len(body) > 512 {
			var gz bytes.Buffer
			w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
			w.Write(body)
			w.Close()
			if gz.Len() < len(body)*9/10 {
				f.Gzip = gz.Bytes()
			}
		}
		s.files[n] = f
	}
	return s, nil
}

// MustSub loads the files under dir of fsys, a tree embedded at build
// time: an error there cannot happen at run time, so it panics.
func MustSub(fsys fs.FS, dir string) *Set {
	sub, err := fs.Sub(fsys, dir)
	if err == nil {
		var s *Set
		if s, err = Load(sub); err == nil {
			return s
		}
	}
	panic(err)
}

// Get returns the file called name, or nil.
func (s *Set) Get(name string) *File { return s.files[name] }

// Pick returns the representation to send for an Accept-Encoding header
// value: the body, its ETag (the gzipped one has its own: a strong
// validator names one representation) and whether it is gzipped. Answers
// vary on Accept-Encoding.
func (f *File) Pick(acceptEncoding string) (body []byte, etag string, gzipped bool) {
	if f.Gzip != nil && AcceptsGzip(acceptEncoding) {
		return f.Gzip, f.ETag[:len(f.ETag)-1] + `-gz"`, true
	}
	return f.Body, f.ETag, false
}

// SetHeaders sets through set the headers that every answer of f carries,
// 200 or 304: etag (the one Pick returned), Cache-Control, Vary and nosniff.
func (f *File) SetHeaders(set func(key, value string), etag string) {
	set("ETag", etag)
	set("Cache-Control", f.CacheControl)
	set("Vary", "Accept-Encoding")
	set("X-Content-Type-Options", "nosniff")
}

// NotModified reports whether an If-None-Match header value names etag.
func NotModified(ifNoneMatch, etag string) bool {
	if ifNoneMatch == "" {
		return false
	}
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// AcceptsGzip reports whether an Accept-Encoding header value allows gzip.
func AcceptsGzip(acceptEncoding string) bool {
	for _, e := range strings.Split(acceptEncoding, ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q = strings.ReplaceAll(strings.TrimSpace(q), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
