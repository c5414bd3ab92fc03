package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/internal/testenv"
)

// failingMidway fails every request's etcd reads once the answer has begun:
// its writer cancels the request's context after the first write, as a
// REQUEST_TIMEOUT or a lost member would cut a stream short.
type failingMidway struct{ h http.Handler }

func (f failingMidway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	f.h.ServeHTTP(&cancelOnWrite{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
}

type cancelOnWrite struct {
	http.ResponseWriter
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.once.Do(func() { w.cancel(errors.New("injected failure")) })
	return n, err
}

func (w *cancelOnWrite) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// A download cut short must look broken to the client: no clean end of a
// truncated body, for a client in Go and for curl.
func TestAStreamThatFailsMidwayBreaksTheConnection(t *testing.T) {
	// A member of its own: the listing needs more than one page of users.
	own := testenv.OpenStore(testenv.StoreConfig())
	defer own.Close()
	ctx := context.Background()
	for i := 0; i < 1100; i += 100 {
		ops := make([]clientv3.Op, 100)
		for j := range ops {
			id := uuid.NewString()
			ops[j] = clientv3.OpPut("/users/"+id, fmt.Sprintf(`{"_id":%q,"nome":"Usuário %d"}`, id, i+j))
		}
		if _, err := own.Client().Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	healthy := httptest.NewServer(New(own, testConfig(), slog.New(slog.DiscardHandler)))
	defer healthy.Close()
	var logged testenv.Buffer
	failing := httptest.NewServer(failingMidway{New(own, testConfig(), slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))})
	defer failing.Close()

	for _, path := range []string{"/usuarios", "/cluster/snapshot"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			// Whole when nothing fails: the check below would see a truncation.
			resp, err := http.Get(healthy.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("healthy download: %d %v", resp.StatusCode, err)
			}

			resp, err = http.Get(failing.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: the failure was meant to come after the answer began", resp.StatusCode)
			}
			if err == nil {
				t.Fatalf("a download cut short at %d of %d bytes ended cleanly", len(got), len(whole))
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Logf("client error: %v", err)
			}

			// curl says so too, with a non-zero exit, and saves nothing that looks whole.
			if _, err := exec.LookPath("curl"); err != nil {
				testenv.Require(t, "curl", "apt-get install curl")
			}
			out := filepath.Join(t.TempDir(), "download")
			cmd := exec.Command("curl", "-sS", "-o", out, failing.URL+path)
			msg, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("curl exited 0 on a download cut short")
			}
			saved, _ := os.ReadFile(out)
			if len(saved) >= len(whole) {
				t.Fatalf("curl saved %d bytes of %d", len(saved), len(whole))
			}
			t.Logf("curl: %s", strings.TrimSpace(string(msg)))
		})
	}
	// The request's context ended, as when a client disconnects: not an error of the server.
	if strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("a request that ended midway was logged as an error:\n%s", logged.String())
	}
}
