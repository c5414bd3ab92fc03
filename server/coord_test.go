package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the tests of fair locks, elections and semaphores.

// send is one request over real HTTP, safe from any goroutine: it reports
// errors instead of failing the test.
func sendJSON(client *http.Client, method, url, body string) (int, obj, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var got obj
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: answer is not a JSON object: %v", method, url, err)
	}
	return resp.StatusCode, got, nil
}

// num reads a JSON number of an answer as an int64 (-1 when absent).
func num(o obj, field string) int64 {
	n, ok := o[field].(json.Number)
	if !ok {
		return -1
	}
	v, _ := n.Int64()
	return v
}

// await polls cond until it holds, failing the test after 15 s.
func await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// result is what a request made in a goroutine came back with.
type result struct {
	code int
	body obj
	err  error
	at   time.Time
}

// async sends a request in a goroutine; its result arrives on the channel.
func async(client *http.Client, method, url, body string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		code, got, err := sendJSON(client, method, url, body)
		ch <- result{code, got, err, time.Now()}
	}()
	return ch
}

// got200 waits for an async request and checks it succeeded.
func got200(t testing.TB, ch <-chan result) result {
	t.Helper()
	r := <-ch
	if r.err != nil || r.code != 200 {
		t.Fatalf("answered %d %v: %v", r.code, r.body, r.err)
	}
	return r
}
