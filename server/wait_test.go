package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A configuration key has an ETag (its mod revision), and If-Match makes a PUT
// or DELETE a compare-and-swap, as for users.
func TestConfigETagAndIfMatch(t *testing.T) {
	put := call(t, api, "PUT", "/config/etag-cas", `{"valor":1}`)
	expect(t, put, 200)
	tag := put.Header().Get("ETag")
	get := call(t, api, "GET", "/config/etag-cas", "")
	if get.Header().Get("ETag") != tag || tag == "" {
		t.Fatalf("GET ETag %q, PUT's %q", get.Header().Get("ETag"), tag)
	}
	expect(t, call(t, api, "PUT", "/config/etag-cas", `{"valor":2}`, "If-Match", tag), 200)
	expect(t, call(t, api, "PUT", "/config/etag-cas", `{"valor":3}`, "If-Match", tag), 412)
	expect(t, call(t, api, "DELETE", "/config/etag-cas", "", "If-Match", tag), 412)
	if v := decode[obj](t, call(t, api, "GET", "/config/etag-cas", ""))["etag-cas"]; fmt.Sprint(v) != "2" {
		t.Fatalf("a refused write changed the value: %v", v)
	}
	cur := call(t, api, "GET", "/config/etag-cas", "").Header().Get("ETag")
	expect(t, call(t, api, "DELETE", "/config/etag-cas", "", "If-Match", cur), 200)
	expect(t, call(t, api, "PUT", "/config/etag-cas", `{"valor":4}`, "If-Match", cur), 412) // gone: no revision matches
}

// watchers is etcd's own count of watchers on the embedded member.
func watchers(t testing.TB) float64 {
	t.Helper()
	n := watcherCount()
	if n < 0 {
		t.Fatal("no etcd_debugging_mvcc_watcher_total")
	}
	return n
}

// watcherCount is etcd's gauge of open watchers, -1 when it cannot be read.
func watcherCount() float64 {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		if f.GetName() == "etcd_debugging_mvcc_watcher_total" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// waitingGet sends a GET with If-None-Match and Prefer: wait=N.
func waitingGet(ctx context.Context, client *http.Client, url, tag string, wait int) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("If-None-Match", tag)
	req.Header.Set("Prefer", fmt.Sprintf("wait=%d", wait))
	return client.Do(req)
}

// Consul's blocking query in HTTP's words: the GET waits while the ETag still
// matches, and answers as soon as the key changes (404 once deleted), or 304.
func TestAWaitingGetAnswersOnChangeOr304(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	tag := call(t, api, "PUT", "/config/espera", `{"valor":"antes"}`).Header().Get("ETag")
	base := watchers(t)

	// No wait asked: 304 at once.
	expect(t, call(t, api, "GET", "/config/espera", "", "If-None-Match", tag), 304)

	// No change: 304 after the wait, not before.
	began := time.Now()
	resp, err := waitingGet(context.Background(), srv.Client(), srv.URL+"/config/espera", tag, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(began); resp.StatusCode != 304 || took < 900*time.Millisecond || resp.Header.Get("ETag") != tag {
		t.Fatalf("no change: %d after %s, ETag %q", resp.StatusCode, took, resp.Header.Get("ETag"))
	}

	// A change while it waits (its watch is open: etcd counts one more
	// watcher): the new value, at once.
	var wakeups []time.Duration
	for i := range 100 {
		await(t, "the last wait's watch to end", func() bool { return watchers(t) == base })
		done := make(chan *http.Response, 1)
		go func() {
			resp, err := waitingGet(context.Background(), srv.Client(), srv.URL+"/config/espera", tag, 30)
			if err != nil {
				resp = &http.Response{StatusCode: 0, Body: http.NoBody}
			}
			done <- resp
		}()
		await(t, "the waiting GET's watch", func() bool { return watchers(t) > base })
		wrote := time.Now()
		put := call(t, api, "PUT", "/config/espera", fmt.Sprintf(`{"valor":%d}`, i))
		resp := <-done
		wakeups = append(wakeups, time.Since(wrote))
		body := decode[obj](t, &httptest.ResponseRecorder{Body: readAll(t, resp)})
		if resp.StatusCode != 200 || fmt.Sprint(body["espera"]) != fmt.Sprint(i) || resp.Header.Get("ETag") != put.Header().Get("ETag") {
			t.Fatalf("after a change: %d %v ETag %q", resp.StatusCode, body, resp.Header.Get("ETag"))
		}
		tag = put.Header().Get("ETag")
	}
	sort.Slice(wakeups, func(i, j int) bool { return wakeups[i] < wakeups[j] })
	t.Logf("a waiting GET answered %s after the write (median of %d)", wakeups[len(wakeups)/2], len(wakeups))

	// Deleted while it waits: 404.
	done := make(chan int, 1)
	go func() {
		resp, err := waitingGet(context.Background(), srv.Client(), srv.URL+"/config/espera", tag, 30)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	call(t, api, "DELETE", "/config/espera", "")
	if code := <-done; code != 404 {
		t.Fatalf("deleted while waiting: %d", code)
	}
}

// A user too: If-None-Match with its ETag waits for the next change.
func TestAWaitingGetOnAUser(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	created := call(t, api, "POST", "/usuarios", `{"nome":"Espera"}`)
	id := decode[obj](t, created)["id"].(string)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := waitingGet(context.Background(), srv.Client(), srv.URL+"/usuarios/"+id, created.Header().Get("ETag"), 30)
		if err != nil {
			resp = &http.Response{Body: http.NoBody}
		}
		done <- resp
	}()
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"cidade":"Recife"}`), 200)
	resp := <-done
	if body := decode[obj](t, &httptest.ResponseRecorder{Body: readAll(t, resp)}); resp.StatusCode != 200 || body["cidade"] != "Recife" {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}

// A thousand waiting requests cost one etcd watch each, and nothing is left
// once their clients go away.
func TestAThousandWaitingRequestsCostOneWatchEachAndGoAway(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}}
	tag := call(t, api, "PUT", "/config/mil", `{"valor":0}`).Header().Get("ETag")
	goroutines, before := runtime.NumGoroutine(), watchers(t)

	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{}, 1000)
	for range 1000 {
		go func() {
			defer func() { ended <- struct{}{} }()
			if resp, err := waitingGet(ctx, client, srv.URL+"/config/mil", tag, 60); err == nil {
				resp.Body.Close()
			}
		}()
	}
	await(t, "1000 watches", func() bool { return watchers(t) >= before+1000 })
	if w := watchers(t); w > before+1000 {
		t.Fatalf("%v watchers for 1000 waiting requests", w-before)
	}
	cancel()
	for range 1000 {
		<-ended
	}
	client.CloseIdleConnections()
	await(t, "the watches to end", func() bool { return watchers(t) == before })
	await(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines+10 })
}

func readAll(t testing.TB, resp *http.Response) *bytes.Buffer {
	t.Helper()
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return &b
}

// A key left alone while compaction moves past its revision: the waiting GET
// still waits (304 after its wait), instead of answering at once and making a
// client's loop spin.
func TestAWaitingGetOnAKeyOlderThanCompactionStillWaits(t *testing.T) {
	own, h := ownMember(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	put := call(t, h, "PUT", "/config/parada", `{"valor":1}`)
	for i := range 5 {
		call(t, h, "PUT", "/config/outra", fmt.Sprintf(`{"valor":%d}`, i))
	}
	resp, err := own.Client().Get(context.Background(), "/config/app/outra")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Client().Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	w, err := waitingGet(context.Background(), srv.Client(), srv.URL+"/config/parada", put.Header().Get("ETag"), 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Body.Close()
	if took := time.Since(began); w.StatusCode != 304 || took < 900*time.Millisecond {
		t.Fatalf("a key older than compaction: %d after %s, want 304 after the wait", w.StatusCode, took)
	}
}
