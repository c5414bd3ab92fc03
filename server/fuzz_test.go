package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyPrefixes are where the API may write; nothing may land anywhere else.
var keyPrefixes = []string{"/users/", "/indices/email/", "/config/app/", "/services/", "/locks/"}

// checkNoStrayKeys fails when etcd holds a key outside the API's prefixes.
func checkNoStrayKeys(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	all, err := st.Client().Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	var inside int64
	for _, p := range keyPrefixes {
		// At the same revision: locks and instances expire on their own in between.
		r, err := st.Client().Get(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(all.Header.Revision))
		if err != nil {
			t.Fatal(err)
		}
		inside += r.Count
	}
	if all.Count != inside {
		keys, _ := st.Client().Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly())
		t.Fatalf("%d keys outside the API's prefixes: %v", all.Count-inside, keys.Kvs)
	}
}

// send makes a request that may be malformed; an impossible URL is no request at all.
func send(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	req, err := http.NewRequest(method, "http://etcdapi"+target, strings.NewReader(body))
	if err != nil {
		return nil
	}
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	api.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %s %q: %d %s", method, target, body, w.Code, w.Body)
	}
	return w
}

func FuzzUserBodies(f *testing.F) {
	for _, seed := range []string{
		`{"nome":"Maria","email":"maria@email.com","idade":28,"cidade":"São Paulo"}`,
		`{"nome":"","idade":3.5}`, `[]`, `null`, `{"nome":{"a":1}}`, `{"_id":"../x","nome":"a"}`,
		`{"nome":"a","email":"A@B.CO","idade":150}`, `{"nome":"a","email":null,"idade":null}`, `{`, `"\u0000"`,
	} {
		f.Add(seed)
	}
	id, _ := createUser(f, `{"nome":"Alvo do fuzz"}`)
	f.Fuzz(func(t *testing.T, body string) {
		send(t, "POST", "/usuarios", body)
		send(t, "PUT", "/usuarios/"+id, body)
		send(t, "PATCH", "/usuarios/"+id, body)
		checkNoStrayKeys(t)
	})
}

func FuzzConfigValues(f *testing.F) {
	for _, seed := range []string{`{"valor":1}`, `{"valor":"100"}`, `{"valor":null}`, `{"valor":{"a":[1,2]}}`, `{}`, `[1]`, `{"valor":1e400}`} {
		f.Add("chave", seed)
	}
	f.Fuzz(func(t *testing.T, key, body string) {
		send(t, "PUT", "/config/"+key, body)
		send(t, "GET", "/config/"+key, "")
		checkNoStrayKeys(t)
	})
}

func FuzzPathIdentifiers(f *testing.F) {
	for _, seed := range []string{"abc", "..", ".", "a/b", "a%2Fb", "%2e%2e", "%00", "é", strings.Repeat("x", 129), "a b", "../../users/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		for _, path := range []string{"/usuarios/", "/config/", "/lock/", "/servicos/"} {
			send(t, "GET", path+id, "")
			send(t, "PUT", path+id, `{"nome":"x","valor":1}`)
			send(t, "DELETE", path+id, "")
		}
		send(t, "POST", "/lock/"+id, `{"ttl":5}`)
		send(t, "GET", "/config/"+id+"/historico", "")
		checkNoStrayKeys(t)
	})
}

// FuzzBodyDecoding checks that goccy/go-json, which splits request bodies into
// their fields, reads every body as encoding/json does. (The typed fields are
// decoded by encoding/json: goccy takes 9227000000000000000 for an int.)
func FuzzBodyDecoding(f *testing.F) {
	for _, seed := range []string{
		`{"nome":"Conceição","email":"c@uol.com.br","idade":34,"cidade":"São Luís"}`,
		`{"n\u006fme":"\ud83d\ude00","nome":"dup"}`, `{"idade":1e2}`, "{\"nome\":\"\xc3\"}", `{"a":{"b":[1,{"c":"\\"}]}}`, `{}`, " {}", "\t{\"a\":1}\n", "null", " null ", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := objectFields(body)
		var compact bytes.Buffer
		var want map[string]json.RawMessage
		// (encoding/json reads null into a nil map without an error: not an object either)
		if !utf8.Valid(body) || json.Compact(&compact, body) != nil || json.Unmarshal(compact.Bytes(), &want) != nil || want == nil {
			if err == nil {
				t.Fatalf("%q: encoding/json refuses it, objectFields read %q", body, got)
			}
			return
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: objectFields %q (%v), encoding/json %q", body, got, err, want)
		}
	})
}
