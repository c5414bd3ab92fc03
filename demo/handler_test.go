package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A 503 is passed to the next member only for requests that are safe to repeat:
// a POST whose outcome is unknown comes back to the client, never sent twice.
func TestProxyRetriesA503OnlyWhenARepeatCannotMislead(t *testing.T) {
	var unavailableHits, okHits atomic.Int64
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unavailableHits.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"erro":"etcd indisponível"}`, http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		okHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	defer ok.Close()
	c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, members: []*member{
		{name: "n1", api: unavailable.URL, state: "ativo"},
		{name: "n2", api: ok.URL, state: "ativo"},
	}}

	for _, tc := range []struct {
		method, ifMatch string
		want            int
		okHits          int64
		outHits         int64
	}{
		{"POST", "", http.StatusServiceUnavailable, 0, 1},
		{"PATCH", "", http.StatusServiceUnavailable, 0, 1},
		{"PUT", "", http.StatusOK, 1, 1},
		{"PUT", `"7"`, http.StatusServiceUnavailable, 0, 1},
		{"DELETE", "", http.StatusServiceUnavailable, 0, 1},
		{"GET", "", http.StatusOK, 1, 1},
	} {
		unavailableHits.Store(0)
		okHits.Store(0)
		c.next = 0 // the unavailable member first
		req := httptest.NewRequest(tc.method, "http://supervisor/config/x", strings.NewReader(`{"valor":1}`))
		if tc.ifMatch != "" {
			req.Header.Set("If-Match", tc.ifMatch)
		}
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || okHits.Load() != tc.okHits || unavailableHits.Load() != tc.outHits {
			t.Errorf("%s: %d %s; the 503 member asked %d times, the next %d times", tc.method, resp.StatusCode, body, unavailableHits.Load(), okHits.Load())
		}
		if tc.want == http.StatusOK && string(body) != `{"valor":1}` {
			t.Errorf("%s: the retried request lost its body: %q", tc.method, body)
		}
	}
}
