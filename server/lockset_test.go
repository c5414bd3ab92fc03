package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Jepsen's lock workload, as etcdapi's clients would run it: 10 clients each
// take the lock, read a list kept in one configuration key, append their
// token with a transaction guarded by the lock and conditioned on the list's
// revision, and release. Two clients pause past their lock's TTL once, as a
// GC pause or a closed laptop would. Every acknowledged append is in the list
// afterwards, and its tokens strictly increase.
func TestLockSetKeepsEveryAcknowledgedAppendInTokenOrder(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	expect(t, call(t, api, "PUT", "/config/lockset", `{"valor":[]}`), 200)
	var (
		mu      sync.Mutex
		acked   []int64
		refused int
		errs    = make(chan error, 10)
	)
	for c := range 10 {
		go func() {
			client := &http.Client{}
			for round := range 4 {
				code, lock, err := sendJSON(client, "POST", srv.URL+"/lock/lockset", fmt.Sprintf(`{"holder":"c%d","ttl":5,"aguardar":40}`, c))
				if err != nil || code != 200 {
					errs <- fmt.Errorf("client %d: lock: %d %v %v", c, code, lock, err)
					return
				}
				token := num(lock, "token")
				resp, err := client.Get(srv.URL + "/config/lockset")
				if err != nil {
					errs <- err
					return
				}
				var doc struct{ Lockset []int64 }
				json.NewDecoder(resp.Body).Decode(&doc)
				resp.Body.Close()
				rev := resp.Header.Get("ETag")
				if c < 2 && round == 1 {
					time.Sleep(6 * time.Second) // paused past the TTL: the lock passes on meanwhile
				}
				list, _ := json.Marshal(append(doc.Lockset, token))
				code, body, err := sendJSON(client, "POST", srv.URL+"/transacao", fmt.Sprintf(
					`{"se":[{"chave":"lockset","revisao":%s}],"entao":[{"definir":"lockset","valor":%s}],"guarda":{"lock":"lockset","token":%d}}`, rev[1:len(rev)-1], list, token))
				mu.Lock()
				switch {
				case err == nil && code == 200:
					acked = append(acked, token)
				case err == nil && code == 409:
					refused++
				default:
					mu.Unlock()
					errs <- fmt.Errorf("client %d: append: %d %v %v", c, code, body, err)
					return
				}
				mu.Unlock()
				sendJSON(client, "DELETE", fmt.Sprintf("%s/lock/lockset?token=%d", srv.URL, token), "")
			}
			errs <- nil
		}()
	}
	for range 10 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var final struct{ Lockset []int64 }
	json.Unmarshal(call(t, api, "GET", "/config/lockset", "").Body.Bytes(), &final)
	in := map[int64]bool{}
	for i, tok := range final.Lockset {
		if i > 0 && tok <= final.Lockset[i-1] {
			t.Fatalf("tokens not increasing at %d: %v", i, final.Lockset)
		}
		in[tok] = true
	}
	for _, tok := range acked {
		if !in[tok] {
			t.Fatalf("acknowledged append %d lost: %v", tok, final.Lockset)
		}
	}
	if refused < 2 {
		t.Fatalf("%d appends refused: the paused clients' appends went through", refused)
	}
	t.Logf("lock-set run: %d appends acknowledged, %d refused (stale holders), list of %d", len(acked), refused, len(final.Lockset))
}
