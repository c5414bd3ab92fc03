package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"etcdapi/internal/testenv"
	"etcdapi/store"
)

// One real embedded member serves every test of the package.
var (
	st  *store.Store
	api http.Handler
)

func TestMain(m *testing.M) {
	st = testenv.OpenStore(testenv.StoreConfig())
	api = New(st, testConfig(), slog.New(slog.DiscardHandler))
	// The search index's watch opens once its first fill is done: tests that
	// count etcd's watchers take their baseline after it.
	for deadline := time.Now().Add(30 * time.Second); watcherCount() < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			panic("the search index's watch did not open within 30 s")
		}
	}
	code := m.Run()
	st.Close()
	os.Exit(code)
}

// ownMember starts a member for one test: a test that compacts would cut the
// history the package's other tests read, and make them depend on the order.
func ownMember(t testing.TB) (*store.Store, http.Handler) {
	own := testenv.OpenStore(testenv.StoreConfig())
	t.Cleanup(func() { own.Close() })
	return own, New(own, testConfig(), slog.New(slog.DiscardHandler))
}

func testConfig() Config {
	var cfg Config
	if err := envconfig.Process("etcdapi_test_unset", &cfg); err != nil {
		panic(err)
	}
	cfg.AllowedHosts = []string{"example.com"} // httptest.NewRequest's Host
	return cfg
}

// call sends one request through the API; body "" sends none, and a body is sent as JSON.
func call(t testing.TB, h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	checkAgainstOpenAPI(t, req, body, w)
	return w
}

// decode reads a JSON answer into a value of type T, failing the test when it is not JSON.
func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer is not JSON %T: %v: %s", v, err, w.Body.String())
	}
	return v
}

type obj = map[string]any

// expect checks the status, and for errors that the body is {"erro": ...}.
func expect(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	if status >= 400 {
		if e, _ := decode[obj](t, w)["erro"].(string); e == "" {
			t.Fatalf("error answer without erro: %s", w.Body.String())
		}
	}
}
