package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"etcdapi/internal/testenv"
)

// send sends one request with headers (name, value, ...) and decodes a JSON answer.
func send(t testing.TB, method, url, body string, header ...string) (int, obj, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v obj
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v, resp.Header
}

// The API keeps no state of its own: two etcdapi processes over one cluster
// see each other's writes, waits, locks and users at once.
func TestTwoProcessesOverOneClusterActAsOne(t *testing.T) {
	a := start(t, memberEnv(t.TempDir())).ready(t)
	b := start(t, []string{"HTTP_ADDR=127.0.0.1:" + itoa(testenv.FreePort()), "ETCD_ENDPOINTS=" + a.Client, "LOG_LEVEL=warn"}).ready(t)

	// A waiting GET on B wakes on a write through A.
	_, _, h := send(t, "PUT", a.API+"/config/partilhada", `{"valor":"antes"}`)
	woke := make(chan obj, 1)
	go func() {
		req, _ := http.NewRequest("GET", b.API+"/config/partilhada", nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		req.Header.Set("Prefer", "wait=30")
		var v obj
		if resp, err := http.DefaultClient.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
		}
		woke <- v
	}()
	send(t, "PUT", a.API+"/config/partilhada", `{"valor":"depois"}`)
	if v := <-woke; v["partilhada"] != "depois" {
		t.Fatalf("B's waiting GET: %v", v)
	}

	// A guarded write through B is refused once the lock changed hands through A.
	_, la, _ := send(t, "POST", a.API+"/lock/partilhado", `{"holder":"a","ttl":30}`)
	send(t, "DELETE", a.API+"/lock/partilhado", "")
	_, lb, _ := send(t, "POST", a.API+"/lock/partilhado", `{"holder":"b","ttl":30}`)
	guard := fmt.Sprintf("lock=partilhado; token=%v", la["token"])
	if code, body, _ := send(t, "PUT", b.API+"/config/guardada", `{"valor":1}`, "Etcdapi-Guarda", guard); code != 409 || fmt.Sprint(body["token_atual"]) != fmt.Sprint(lb["token"]) {
		t.Fatalf("stale guard through B: %d %v (holder now %v)", code, body, lb["token"])
	}

	// A user created through A is found at once by a search on B.
	_, created, _ := send(t, "POST", a.API+"/usuarios", `{"nome":"Conceição Partilhada","email":"conceicao@exemplo.com.br"}`)
	var found []obj
	req, _ := http.NewRequest("GET", b.API+"/usuarios/buscar?nome=conceicao%20partilhada", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&found)
	resp.Body.Close()
	if len(found) != 1 || found[0]["_id"] != created["id"] {
		t.Fatalf("search on B right after the create on A: %v (created %v)", found, created["id"])
	}
}
