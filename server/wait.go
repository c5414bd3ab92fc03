package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// awaitChange serves a conditional GET (SPEC §4, "Waiting for a change"): with
// If-None-Match naming the key's current revision it answers 304 at once, or,
// with Prefer: wait=N, waits up to N seconds for key to change (Consul's
// blocking query). reread tells the handler to read the key again and answer
// it; answered, that the answer (304, or an error) is sent.
func (s *server) awaitChange(c *gin.Context, key string, rev int64) (reread, answered bool) {
	if inm := c.GetHeader("If-None-Match"); inm == "" || !etagMatches(inm, rev) {
		return false, false
	}
	wait := preferWait(c.GetHeader("Prefer"))
	if wait > 0 {
		release, ok := s.wait(c, wait)
		if !ok {
			return false, true
		}
		defer release()
		c.Header("Preference-Applied", "wait="+strconv.Itoa(int(wait.Seconds())))
		ctx, cancel := context.WithTimeout(c.Request.Context(), wait)
		changed, err := s.store.AwaitChange(ctx, key, rev)
		cancel()
		switch {
		case err != nil:
			s.fail(c, err)
			return false, true
		case changed:
			return true, false
		case c.Request.Context().Err() != nil:
			s.fail(c, context.Cause(c.Request.Context())) // the client left, or the server is stopping
			return false, true
		}
	}
	c.Header(etagHeader, etag(rev))
	c.Status(http.StatusNotModified)
	c.Abort()
	return false, true
}

// etagMatches tells whether an If-None-Match header names revision rev.
func etagMatches(header string, rev int64) bool {
	want := etag(rev)
	for _, t := range strings.Split(header, ",") {
		if t = strings.TrimPrefix(strings.TrimSpace(t), "W/"); t == want || t == "*" {
			return true
		}
	}
	return false
}

// preferWait reads wait=N from a Prefer header (RFC 7240): N seconds, at most
// 60; 0 when absent or not a number.
func preferWait(header string) time.Duration {
	for _, p := range strings.FieldsFunc(header, func(r rune) bool { return r == ',' || r == ';' }) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "wait="); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return 0
			}
			return time.Duration(min(n, 60)) * time.Second
		}
	}
	return 0
}
