package server

import (
	"crypto/rand"
	"crypto/subtle"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Request ids made here are this process's random prefix and a count: unique,
// and cheaper than a random id each (crypto/rand was 1 % of a GET's CPU).
var (
	idPrefix = rand.Text()[:10] + "-"
	idCount  atomic.Uint64
)

// The headers set on every answer, spelled as net/http stores them: another
// spelling costs a canonicalising copy on each Set and Get.
const (
	requestIDHeader = "X-Request-Id"
	etagHeader      = "Etag"
)

// requestID keeps the caller's X-Request-ID, or makes one, for the answer and the logs.
func (s *server) requestID(c *gin.Context) {
	id := c.GetHeader(requestIDHeader)
	if id == "" || len(id) > 128 {
		id = idPrefix + strconv.FormatUint(idCount.Add(1), 36)
	}
	c.Header(requestIDHeader, id)
	c.Next()
}

// requestIDOf is the request's id, from its answer's header.
func requestIDOf(c *gin.Context) string { return c.Writer.Header().Get(requestIDHeader) }

// accessLog writes one line per request and counts it in the metrics.
// endLine ends every JSON answer with a newline, as json.Encoder does, so a
// shell prompt after curl starts on a line of its own. Not an answer that
// declared its Content-Length (gin's c.Data does): one byte more would break
// the connection.
func endLine(c *gin.Context) {
	w := &lastByte{ResponseWriter: c.Writer}
	c.Writer = w
	c.Next()
	h := w.Header()
	if w.last != 0 && w.last != '\n' && strings.HasPrefix(h.Get("Content-Type"), "application/json") && h.Get("Content-Length") == "" {
		w.Write([]byte{'\n'})
	}
}

// lastByte remembers the last byte of the body written through it.
type lastByte struct {
	gin.ResponseWriter
	last byte
}

func (w *lastByte) Write(b []byte) (int, error) {
	if len(b) > 0 {
		w.last = b[len(b)-1]
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection: the deadlines of
// streams, waits and snapshots are set through it.
func (w *lastByte) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *lastByte) WriteString(s string) (int, error) {
	if len(s) > 0 {
		w.last = s[len(s)-1]
	}
	return w.ResponseWriter.WriteString(s)
}

func (s *server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	took := time.Since(start)
	observe(c, took)
	if s.access.Enabled(c.Request.Context(), slog.LevelInfo) {
		s.access.access(c.Request.Context(), c.Request.Method, c.FullPath(), c.Request.URL.Path, c.Writer.Status(), took, requestIDOf(c))
	}
}

// validIdentifier matches [A-Za-z0-9._-]{1,128} but not . or .. (a loop: the
// regexp was 2 % of a GET's CPU).
func validIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validParams refuses path identifiers that could reach a key outside their prefix.
func (s *server) validParams(c *gin.Context) {
	for _, p := range c.Params {
		if !validIdentifier(p.Value) {
			s.fail(c, &apiError{status: http.StatusBadRequest, msg: "Identificador inválido em " + p.Key,
				campos: map[string]string{p.Key: "use de 1 a 128 caracteres entre A-Z a-z 0-9 . _ - (nem . nem ..)"}})
			return
		}
	}
	c.Next()
}

// limitBody refuses bodies over MAX_BODY_BYTES (before reading them whole) and
// bodies that do not say they are JSON.
func (s *server) limitBody(c *gin.Context) {
	r := c.Request
	if r.ContentLength == 0 || r.Method == http.MethodGet || r.Method == http.MethodHead {
		c.Next()
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.fail(c, &apiError{status: http.StatusRequestEntityTooLarge, msg: "Corpo da requisição grande demais"})
		return
	}
	// A missing Content-Type is refused too: a page can send a body without
	// one (or as text/plain) with no CORS preflight, JSON cannot.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		s.fail(c, &apiError{status: http.StatusUnsupportedMediaType, msg: "Content-Type deve ser application/json"})
		return
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, s.cfg.MaxBodyBytes)
	c.Next()
}

// auth asks for API_TOKEN as a Bearer token when one is set.
func (s *server) auth(c *gin.Context) {
	if s.cfg.Token == "" {
		c.Next()
		return
	}
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok && c.FullPath() == "/eventos" {
		// A browser's EventSource cannot set headers (RFC 6750 §2.3).
		got, ok = c.Query("access_token"), true
	}
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="etcdapi"`)
		s.fail(c, &apiError{status: http.StatusUnauthorized, msg: "Token ausente ou inválido"})
		return
	}
	c.Next()
}
