package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// LockSet is the outcome of a lock-set run: the tokens whose append was
// acknowledged, how many appends were refused (stale holder or stale list),
// and the list as it ended.
type LockSet struct {
	Acked   []int64
	Refused int
	Failed  int // requests with no clear answer (a 503, a fault): never acknowledged
	Final   []int64
}

// Kind is what the clients of a lock-set run hold: how they take it, the
// guard their appends carry, and how they give it back.
type Kind struct {
	Guard   string                               // "lock", "eleicao" or "semaforo"
	Acquire func(client int) (path, body string) // POST
	Release func(token int64) (method, path string)
}

var (
	// Lock is the lock "lockset".
	Lock = Kind{"lock",
		func(c int) (string, string) {
			return "/lock/lockset", fmt.Sprintf(`{"holder":"c%d","ttl":5,"aguardar":30}`, c)
		},
		func(t int64) (string, string) { return "DELETE", fmt.Sprintf("/lock/lockset?token=%d", t) }}
	// Election is the election "lockset": its leader holds.
	Election = Kind{"eleicao",
		func(c int) (string, string) {
			return "/eleicao/lockset/candidatar", fmt.Sprintf(`{"candidato":"c%d","ttl":5,"aguardar":30}`, c)
		},
		func(t int64) (string, string) { return "DELETE", fmt.Sprintf("/eleicao/lockset?token=%d", t) }}
	// Semaphore is the semaphore "lockset" with one place.
	Semaphore = Kind{"semaforo",
		func(c int) (string, string) {
			return "/semaforo/lockset", fmt.Sprintf(`{"holder":"c%d","limite":1,"ttl":5,"aguardar":30}`, c)
		},
		func(t int64) (string, string) { return "DELETE", fmt.Sprintf("/semaforo/lockset?token=%d", t) }}
)

// RunLockSet is Jepsen's lock workload against an etcdapi at api: clients each,
// for rounds, take the lock "lockset", read the list kept in the configuration
// key "lockset", append their token with a transaction guarded by the lock
// (and, with byRevision, conditioned on the list's revision too), and release.
// pause(client, round) is how long that client stops while holding the lock
// (0: none), as a GC pause would. Without byRevision the guard alone stands
// between a paused holder and the list.
func RunLockSet(api string, clients, rounds int, byRevision bool, pause func(client, round int) time.Duration) (LockSet, error) {
	return RunHolderSet(api, Lock, clients, rounds, byRevision, pause)
}

// RunHolderSet is RunLockSet with what the clients hold of kind: a lock, an
// election's leadership or a semaphore's one place (and the list is the
// configuration key "lockset-eleicao" or "lockset-semaforo").
func RunHolderSet(api string, kind Kind, clients, rounds int, byRevision bool, pause func(client, round int) time.Duration) (LockSet, error) {
	list := "lockset" // the configuration key of the list: one per kind, so runs can share a cluster
	if kind.Guard != "lock" {
		list += "-" + kind.Guard
	}
	client := &http.Client{Timeout: 60 * time.Second}
	post := func(method, path, body string) (int, map[string]json.RawMessage, http.Header) {
		req, _ := http.NewRequest(method, api+path, bytes.NewReader([]byte(body)))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, nil
		}
		defer resp.Body.Close()
		var v map[string]json.RawMessage
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v, resp.Header
	}
	if code, _, _ := post("PUT", "/config/"+list, `{"valor":[]}`); code != 200 {
		return LockSet{}, fmt.Errorf("PUT /config/%s: %d", list, code)
	}
	var (
		mu  sync.Mutex
		out LockSet
		wg  sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			for round := range rounds {
				path, body := kind.Acquire(c)
				code, lock, _ := post("POST", path, body)
				var token int64
				if code != 200 || json.Unmarshal(lock["token"], &token) != nil {
					mu.Lock()
					out.Failed++
					mu.Unlock()
					continue
				}
				code, doc, h := post("GET", "/config/"+list, "")
				var tokens []int64
				if code != 200 || json.Unmarshal(doc[list], &tokens) != nil {
					mu.Lock()
					out.Failed++
					mu.Unlock()
					continue
				}
				etag := h.Get("ETag")
				time.Sleep(pause(c, round))
				next, _ := json.Marshal(append(tokens, token))
				cond := "[]"
				if byRevision {
					cond = fmt.Sprintf(`[{"chave":%q,"revisao":%s}]`, list, etag[1:len(etag)-1])
				}
				code, _, _ = post("POST", "/transacao", fmt.Sprintf(
					`{"se":%s,"entao":[{"definir":%q,"valor":%s}],"guarda":{%q:"lockset","token":%d}}`, cond, list, next, kind.Guard, token))
				mu.Lock()
				switch code {
				case 200:
					out.Acked = append(out.Acked, token)
				case 409:
					out.Refused++
				default:
					out.Failed++
				}
				mu.Unlock()
				method, path := kind.Release(token)
				post(method, path, "")
			}
		})
	}
	wg.Wait()
	for range 50 { // the cluster may still be recovering from the last fault
		code, doc, _ := post("GET", "/config/"+list, "")
		if code == 200 {
			return out, json.Unmarshal(doc[list], &out.Final)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out, fmt.Errorf("GET /config/%s after the run: no answer", list)
}

// Check tells what is wrong with a run: an acknowledged append missing from
// the list, or tokens not strictly increasing.
func (l LockSet) Check() error {
	in := map[int64]bool{}
	for i, tok := range l.Final {
		if i > 0 && tok <= l.Final[i-1] {
			return fmt.Errorf("tokens not increasing at %d: %v", i, l.Final)
		}
		in[tok] = true
	}
	for _, tok := range l.Acked {
		if !in[tok] {
			return fmt.Errorf("acknowledged append %d lost: %v", tok, l.Final)
		}
	}
	return nil
}
