package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"etcdapi/internal/testenv"
)

func TestMetricsCountRoutesByTemplateWithEtcdsOwn(t *testing.T) {
	call(t, api, "GET", "/usuarios/metrica-1", "")
	call(t, api, "GET", "/usuarios/metrica-2", "")
	body := call(t, api, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`etcdapi_http_requests_total{method="GET",route="/usuarios/:id",status="404"}`,
		`etcdapi_http_request_duration_seconds_bucket{method="GET",route="/usuarios/:id",status="404"`,
		"etcd_server_has_leader",
		"etcd_mvcc_db_total_size_in_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "metrica-1") {
		t.Error("/metrics labels raw paths")
	}
}

func TestTokenGuardsTheAPIButNotHealthOrTheDashboard(t *testing.T) {
	cfg := testConfig()
	cfg.Token = "segredo"
	h := New(st, cfg, slog.New(slog.DiscardHandler))
	for _, path := range []string{"/usuarios", "/config", "/cluster", "/metrics", "/eventos?prefixo=/locks/"} {
		w := call(t, h, "GET", path, "")
		expect(t, w, 401)
		if w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", path)
		}
		expect(t, call(t, h, "GET", path, "", "Authorization", "Bearer errado"), 401)
	}
	expect(t, call(t, h, "GET", "/config", "", "Authorization", "Bearer segredo"), 200)
	expect(t, call(t, h, "GET", "/eventos?prefixo=/x/&access_token=segredo", ""), 400) // past auth, into validation
	expect(t, call(t, h, "GET", "/usuarios?access_token=segredo", ""), 401)            // the query token is for /eventos only
	for _, path := range []string{"/healthz", "/readyz", "/ui/", "/ui/app.js", "/"} {
		if w := call(t, h, "GET", path, ""); w.Code != 200 {
			t.Errorf("%s: %d without a token", path, w.Code)
		}
	}
}

func TestCORSAllowsTheConfiguredOrigins(t *testing.T) {
	cfg := testConfig()
	cfg.CORSOrigins = []string{"http://painel.example"}
	h := New(st, cfg, slog.New(slog.DiscardHandler))
	w := call(t, h, "OPTIONS", "/usuarios", "", "Origin", "http://painel.example", "Access-Control-Request-Method", "POST")
	if w.Code >= 300 || w.Header().Get("Access-Control-Allow-Origin") != "http://painel.example" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	w = call(t, h, "GET", "/config", "", "Origin", "http://outro.example")
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a foreign origin was allowed: %v", w.Header())
	}
}

func TestRequestIDIsKeptOrMade(t *testing.T) {
	if id := call(t, api, "GET", "/healthz", "", "X-Request-ID", "abc-123").Header().Get("X-Request-ID"); id != "abc-123" {
		t.Fatalf("X-Request-ID %q", id)
	}
	a, b := call(t, api, "GET", "/nada", "").Header().Get("X-Request-ID"), call(t, api, "GET", "/nada", "").Header().Get("X-Request-ID")
	if a == "" || a == b {
		t.Fatalf("X-Request-ID made: %q then %q", a, b)
	}
}

func TestQuotaReachedAnswers507AndMaintenanceBringsWritesBack(t *testing.T) {
	cfg := testenv.StoreConfig()
	cfg.QuotaBytes = 2 << 20
	small := testenv.OpenStore(cfg)
	defer small.Close()
	h := New(small, testConfig(), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	big := strings.Repeat("x", 100<<10)
	var ids []string
	for i := 0; ; i++ {
		w := call(t, h, "POST", "/usuarios", fmt.Sprintf(`{"nome":"cheio %d","carga":"%s"}`, i, big))
		if w.Code == http.StatusInsufficientStorage {
			break
		}
		expect(t, w, 201)
		ids = append(ids, decode[obj](t, w)["id"].(string))
		if i > 100 {
			t.Fatal("no 507 after 10 MB of users with a 2 MB quota")
		}
	}
	expect(t, call(t, h, "PUT", "/config/x", `{"valor":1}`), 507)
	expect(t, call(t, h, "GET", "/usuarios/"+ids[0], ""), 200) // reads keep working
	for _, id := range ids {
		expect(t, call(t, h, "DELETE", "/usuarios/"+id, ""), 200)
	}
	w := call(t, h, "POST", "/cluster/manutencao", "")
	expect(t, w, 200)
	t.Logf("maintenance: %s", w.Body)
	expect(t, call(t, h, "POST", "/usuarios", `{"nome":"de volta"}`), 201)
	_ = context.Background
}

func TestIndexListsRoutesAndSendsBrowsersToTheDashboard(t *testing.T) {
	w := call(t, api, "GET", "/", "")
	expect(t, w, 200)
	if !strings.Contains(w.Body.String(), "POST /usuarios") || !strings.Contains(w.Body.String(), "GET /eventos") {
		t.Fatalf("index: %s", w.Body)
	}
	w = call(t, api, "GET", "/", "", "Accept", "text/html,application/xhtml+xml")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/ui/" {
		t.Fatalf("browser: %d %v", w.Code, w.Header())
	}
	if w := call(t, api, "GET", "/ui/", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "<title>etcdapi") {
		t.Fatalf("/ui/: %d", w.Code)
	}
}

// A browser sees every answer to an allowed origin, errors included, and a
// caller without the token learns nothing about its path or body but a 401.
func TestCORSOnEveryAnswerAndTheTokenJudgedFirst(t *testing.T) {
	cfg := testConfig()
	cfg.Token = "segredo"
	cfg.CORSOrigins = []string{"http://painel.example"}
	cfg.MaxBodyBytes = 64
	h := New(st, cfg, slog.New(slog.DiscardHandler))
	const origin = "http://painel.example"
	big := `{"nome":"` + strings.Repeat("x", 100) + `"}`
	for _, tc := range []struct {
		method, path, body, contentType, token string
		status                                 int
	}{
		{"GET", "/usuarios/a..b%2F", "", "", "segredo", 400},
		{"GET", "/usuarios/a..b%2F", "", "", "", 401},
		{"POST", "/usuarios", big, "application/json", "segredo", 413},
		{"POST", "/usuarios", big, "application/json", "", 401},
		{"POST", "/usuarios", `{"nome":"x"}`, "text/plain", "segredo", 415},
		{"POST", "/usuarios", `{"nome":"x"}`, "text/plain", "", 401},
		{"GET", "/usuarios/nao-existe", "", "", "segredo", 404},
		{"GET", "/nada", "", "", "segredo", 404},
		{"GET", "/nada", "", "", "", 401},
		{"DELETE", "/usuarios", "", "", "segredo", 405},
		{"GET", "/config", "", "", "", 401},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Origin", origin)
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("%s %s (token %q): %d, want %d: %s", tc.method, tc.path, tc.token, w.Code, tc.status, w.Body)
		}
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("%s %s: %d without CORS headers", tc.method, tc.path, w.Code)
		}
		if e, _ := decode[obj](t, w)["erro"].(string); e == "" {
			t.Errorf("%s %s: %d without erro: %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
}

// Maintenance twice in a row compacts at a revision compacted already: etcd's
// ErrCompacted is no failure then. A member of its own, since compaction
// would cut the history other tests of the package read.
func TestMaintenanceTwiceInARow(t *testing.T) {
	own := testenv.OpenStore(testenv.StoreConfig())
	defer own.Close()
	h := New(own, testConfig(), slog.New(slog.DiscardHandler))
	expect(t, call(t, h, "PUT", "/config/x", `{"valor":1}`), 200)
	expect(t, call(t, h, "POST", "/cluster/manutencao", ""), 200)
	expect(t, call(t, h, "POST", "/cluster/manutencao", ""), 200)
}
