package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// 100 requests with made-up 50 KB methods once made /metrics 91.5 MB: labels
// now come from a closed set.
func TestOddMethodsDoNotGrowTheMetrics(t *testing.T) {
	for i := range 100 {
		method := fmt.Sprintf("M%d%s", i, strings.Repeat("X", 50<<10))
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(method, "/usuarios", nil))
		if w.Code < 400 {
			t.Fatalf("a made-up method answered %d", w.Code)
		}
	}
	w := call(t, api, "GET", "/metrics", "")
	body := w.Body.String()
	if strings.Contains(body, "XXXX") || !strings.Contains(body, `method="other"`) {
		t.Fatalf("made-up methods in the metrics (%d bytes)", len(body))
	}
	if len(body) > 1<<20 {
		t.Fatalf("/metrics is %d bytes", len(body))
	}
}

// Past MAX_STREAMS open streams and MAX_WAITERS waiting requests: 503 with
// Retry-After, and the ones already open go on.
func TestStreamsAndWaitersPastTheirLimitGet503(t *testing.T) {
	cfg := testConfig()
	cfg.MaxStreams, cfg.MaxWaiters = 1, 1
	srv := httptest.NewServer(New(st, cfg, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	client := srv.Client()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/eventos?prefixo=/config/app/limite-", nil)
	first, err := client.Do(req)
	if err != nil || first.StatusCode != 200 {
		t.Fatalf("first stream: %v %v", first, err)
	}
	defer first.Body.Close()
	resp, err := client.Get(srv.URL + "/eventos?prefixo=/config/app/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second stream: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The first stream still delivers.
	call(t, api, "PUT", "/config/limite-x", `{"valor":1}`)
	lines := bufio.NewScanner(first.Body)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "data:") {
	}
	if !strings.Contains(lines.Text(), "limite-x") {
		t.Fatalf("first stream after the refusal: %q %v", lines.Text(), lines.Err())
	}

	_, held := acquire(t, "limite-espera", `{"holder":"dono","ttl":30}`)
	defer call(t, api, "DELETE", "/lock/limite-espera", "")
	waited := make(chan int, 1)
	go func() {
		code, _, _ := sendJSON(client, "POST", srv.URL+"/lock/limite-espera", `{"holder":"w1","ttl":30,"aguardar":20}`)
		waited <- code
	}()
	await(t, "the first waiter in line", func() bool { return lockQueueLen(t, "limite-espera") == 1 })
	code, body, err := sendJSON(client, "POST", srv.URL+"/lock/limite-espera", `{"holder":"w2","ttl":30,"aguardar":20}`)
	if err != nil || code != 503 {
		t.Fatalf("second waiter: %d %v %v", code, body, err)
	}
	if code, _, _ := sendJSON(client, "POST", srv.URL+"/lock/limite-espera", `{"holder":"w3","ttl":30}`); code != 409 {
		t.Fatalf("a request that does not wait is not limited: %d", code)
	}
	call(t, api, "DELETE", fmt.Sprintf("/lock/limite-espera?token=%d", num(held, "token")), "")
	if code := <-waited; code != 200 {
		t.Fatalf("first waiter: %d", code)
	}
}

// desde from the future once overflowed (the stream closed at once, and a
// browser reconnected forever); now it is 400. Right after the current
// revision is where a client that saw everything resumes: that stays 200.
func TestEventsRefuseADesdeFromTheFuture(t *testing.T) {
	now := decode[obj](t, call(t, api, "PUT", "/config/desde-agora", `{"valor":1}`))
	rev := num(now, "revisao")
	for _, desde := range []string{"9223372036854775807", fmt.Sprint(rev + 1000), "-1", "x"} {
		// A stream opened by mistake ends with its context, and fails the test.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/eventos?prefixo=/config/app/&desde="+desde, nil))
		cancel()
		expect(t, w, 400)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	resp, err := srv.Client().Get(fmt.Sprintf("%s/eventos?prefixo=/config/app/desde-&desde=%d", srv.URL, rev))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len(": etcdapi"))
	if _, err := io.ReadFull(resp.Body, first); resp.StatusCode != 200 || err != nil {
		t.Fatalf("desde = the current revision: %d %v", resp.StatusCode, err)
	}
}

// The dashboard allows only its own files and cannot be framed.
func TestDashboardIsSentWithSecurityHeaders(t *testing.T) {
	for _, path := range []string{"/ui/", "/ui/app.js"} {
		w := call(t, api, "GET", path, "")
		h := w.Header()
		if w.Code != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: %d %v", path, w.Code, h)
		}
	}
}

// Behind endLine's writer, a handler still reaches the connection's
// deadlines: streams, waits and snapshots lift the server's 60 s answer
// timeout through http.ResponseController (without Unwrap they could not,
// and every /eventos stream was cut after 60 s).
func TestDeadlinesReachTheConnectionThroughTheMiddleware(t *testing.T) {
	r := gin.New()
	r.Use(endLine)
	r.GET("/prazo", func(c *gin.Context) {
		err := http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(time.Minute))
		c.JSON(http.StatusOK, gin.H{"erro": fmt.Sprint(err)})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	code, got, err := sendJSON(http.DefaultClient, "GET", srv.URL+"/prazo", "")
	if err != nil || code != 200 || got["erro"] != "<nil>" {
		t.Fatalf("SetWriteDeadline behind endLine: %d %v %v, want no error", code, got, err)
	}
}
