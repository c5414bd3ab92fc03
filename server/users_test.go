package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/store"
)

func createUser(t testing.TB, body string) (id string, etag string) {
	t.Helper()
	w := call(t, api, "POST", "/usuarios", body)
	expect(t, w, 201)
	return decode[obj](t, w)["id"].(string), w.Header().Get("ETag")
}

func uniqueEmail(t testing.TB) string {
	return strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + fmt.Sprint(len(t.Name())) + "@example.com"
}

func TestCreateUserAnswersWithLocationETagAndTheUser(t *testing.T) {
	w := call(t, api, "POST", "/usuarios", `{"nome":"Maria Santos","email":"maria.create@email.com","idade":28,"cidade":"São Paulo","_id":"forged","criado_em":"1999"}`)
	expect(t, w, 201)
	got := decode[obj](t, w)
	id := got["id"].(string)
	if got["mensagem"] != "Usuário criado com sucesso" || got["chave"] != "/users/"+id {
		t.Fatalf("answer: %v", got)
	}
	u := got["usuario"].(obj)
	if u["_id"] != id || u["cidade"] != "São Paulo" || fmt.Sprint(u["idade"]) != "28" || u["criado_em"] == "1999" || u["atualizado_em"] == nil {
		t.Fatalf("usuario: %v", u)
	}
	if w.Header().Get("Location") != "/usuarios/"+id || w.Header().Get("ETag") == "" {
		t.Fatalf("headers: %v", w.Header())
	}
	// What is left in etcd: the user and its email index.
	resp, _ := st.Client().Get(context.Background(), "/indices/email/maria.create@email.com")
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != id {
		t.Fatalf("email index: %v", resp.Kvs)
	}
	w = call(t, api, "GET", "/usuarios/"+id, "")
	expect(t, w, 200)
	if decode[obj](t, w)["nome"] != "Maria Santos" || w.Header().Get("ETag") == "" {
		t.Fatalf("get: %s", w.Body)
	}
}

func TestCreateUserRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		campos     []string
	}{
		{"malformed", `{"nome":`, 400, nil},
		{"array", `[{"nome":"a"}]`, 400, nil},
		{"null", `null`, 400, nil},
		{"string", `"nome"`, 400, nil},
		{"missing nome", `{"email":"a@b.co"}`, 400, []string{"nome"}},
		{"empty nome", `{"nome":""}`, 400, []string{"nome"}},
		{"nome not a string", `{"nome":42}`, 400, []string{"nome"}},
		{"nome too long", `{"nome":"` + strings.Repeat("é", 201) + `"}`, 400, []string{"nome"}},
		{"idade 200", `{"nome":"a","idade":200}`, 400, []string{"idade"}},
		{"idade negative", `{"nome":"a","idade":-1}`, 400, []string{"idade"}},
		{"idade 3.5", `{"nome":"a","idade":3.5}`, 400, []string{"idade"}},
		{"idade string", `{"nome":"a","idade":"30"}`, 400, []string{"idade"}},
		{"bad email", `{"nome":"a","email":"not-an-email"}`, 400, []string{"email"}},
		{"every bad field", `{"nome":7,"email":"x","idade":151}`, 400, []string{"email", "idade", "nome"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countKeys(t, "/users/")
			w := call(t, api, "POST", "/usuarios", tc.body)
			expect(t, w, tc.status)
			if tc.campos != nil {
				campos, _ := decode[obj](t, w)["campos"].(obj)
				var names []string
				for k := range campos {
					names = append(names, k)
				}
				slices.Sort(names)
				if !slices.Equal(names, tc.campos) {
					t.Fatalf("campos %v, want %v", campos, tc.campos)
				}
			}
			if after := countKeys(t, "/users/"); after != before {
				t.Fatalf("a failed request wrote to etcd: %d users, then %d", before, after)
			}
		})
	}
}

// encoding/json matches keys ignoring case; the email index must not.
func TestEmailIndexUsesExactlyTheEmailField(t *testing.T) {
	owner := func(email string) string {
		t.Helper()
		resp, err := st.Client().Get(context.Background(), "/indices/email/"+strings.ToLower(email))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	w := call(t, api, "POST", "/usuarios", `{"nome":"a","EMAIL":"not-an-email"}`)
	expect(t, w, 201)
	got := decode[obj](t, w)
	if u := got["usuario"].(obj); u["EMAIL"] != "not-an-email" || u["email"] != nil {
		t.Fatalf("usuario: %v", u)
	}
	resp, err := st.Client().Get(context.Background(), "/indices/email/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if string(kv.Value) == got["id"] {
			t.Fatalf("EMAIL went into the email index: %s", kv.Key)
		}
	}
	expect(t, call(t, api, "POST", "/usuarios", `{"nome":"b","Email":"not-an-email"}`), 201)

	// An address under another case of the field is not the user's email:
	// writing or deleting that user leaves the index to the address's owner.
	email := uniqueEmail(t)
	other, _ := createUser(t, `{"nome":"c","EMAIL":"`+email+`"}`)
	id, _ := createUser(t, `{"nome":"d","email":"`+email+`"}`)
	expect(t, call(t, api, "PATCH", "/usuarios/"+other, `{"EMAIL":null}`), 200)
	expect(t, call(t, api, "PUT", "/usuarios/"+other, `{"nome":"c","eMail":"`+email+`"}`), 200)
	expect(t, call(t, api, "DELETE", "/usuarios/"+other, ""), 200)
	if got := owner(email); got != id {
		t.Fatalf("index of %s names %q, want %s", email, got, id)
	}
	// Moving the address to another case of the field lets it go.
	expect(t, call(t, api, "PUT", "/usuarios/"+id, `{"nome":"d","Email":"`+email+`"}`), 200)
	if got := owner(email); got != "" {
		t.Fatalf("index of %s still names %q", email, got)
	}
	createUser(t, `{"nome":"e","email":"`+email+`"}`)
}

func countKeys(t testing.TB, prefix string) int64 {
	t.Helper()
	resp, err := st.Client().Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

func TestRequestsRejectedBeforeTheHandler(t *testing.T) {
	big := `{"nome":"` + strings.Repeat("a", 1<<20) + `"}`
	expect(t, call(t, api, "POST", "/usuarios", big), 413)
	expect(t, call(t, api, "POST", "/usuarios", `{"nome":"a"}`, "Content-Type", "text/plain"), 415)
	expect(t, call(t, api, "POST", "/usuarios", "nome=a", "Content-Type", "application/x-www-form-urlencoded"), 415)
	expect(t, call(t, api, "GET", "/nada", ""), 404)
	w := call(t, api, "POST", "/usuarios/abc", `{}`)
	expect(t, w, 405)
	if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") {
		t.Fatalf("Allow: %q", allow)
	}
	for _, id := range []string{"..", ".", "a%20b", "a%2Fb", strings.Repeat("x", 129), "%C3%A9"} {
		expect(t, call(t, api, "GET", "/usuarios/"+id, ""), 400)
		expect(t, call(t, api, "PUT", "/config/"+id, `{"valor":1}`), 400)
	}
	expect(t, call(t, api, "GET", "/usuarios/"+strings.Repeat("x", 128), ""), 404)
}

func TestPanicAnswersJSON500AndTheServerLivesOn(t *testing.T) {
	h := New(st, testConfig(), slog.New(slog.DiscardHandler))
	h.GET("/panico", func(c *gin.Context) { panic("boom") })
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/panico", nil))
	expect(t, w, 500)
	expect(t, call(t, h, "GET", "/healthz", ""), 200)
}

func TestReplaceUserKeepsIdAndCreationAndMovesTheEmailIndex(t *testing.T) {
	id, _ := createUser(t, `{"nome":"João Silva","email":"Joao.Replace@Email.com","idade":30,"cidade":"Recife"}`)
	created := decode[obj](t, call(t, api, "GET", "/usuarios/"+id, ""))
	w := call(t, api, "PUT", "/usuarios/"+id, `{"nome":"João Silva Santos","email":"joao.santos.replace@email.com","idade":31}`)
	expect(t, w, 200)
	got := decode[obj](t, w)
	u := got["usuario"].(obj)
	if got["mensagem"] != "Usuário atualizado" || got["id"] != id || u["_id"] != id || u["criado_em"] != created["criado_em"] || u["cidade"] != nil || u["nome"] != "João Silva Santos" {
		t.Fatalf("answer: %v", got)
	}
	if countKeys(t, "/indices/email/joao.replace@email.com") != 0 || countKeys(t, "/indices/email/joao.santos.replace@email.com") != 1 {
		t.Fatal("email index did not move")
	}
	// The old email is free again.
	createUser(t, `{"nome":"Outro","email":"joao.replace@email.com"}`)
	expect(t, call(t, api, "PUT", "/usuarios/"+id, `{"idade":31}`), 400)
	expect(t, call(t, api, "PUT", "/usuarios/nao-existe", `{"nome":"x"}`), 404)
}

func TestEmailIsUniqueIgnoringCase(t *testing.T) {
	createUser(t, `{"nome":"Ana","email":"Ana.Unique@Email.com"}`)
	expect(t, call(t, api, "POST", "/usuarios", `{"nome":"Ana 2","email":"ana.unique@EMAIL.com"}`), 409)
	id, _ := createUser(t, `{"nome":"Bia","email":"bia.unique@email.com"}`)
	expect(t, call(t, api, "PUT", "/usuarios/"+id, `{"nome":"Bia","email":"ANA.UNIQUE@email.com"}`), 409)
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"email":"ana.unique@email.com"}`), 409)
	// Changing only the case of one's own email is fine.
	w := call(t, api, "PATCH", "/usuarios/"+id, `{"email":"BIA.unique@email.com"}`)
	expect(t, w, 200)
}

func TestConcurrentCreatesWithOneEmailMakeOneUser(t *testing.T) {
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			codes <- call(t, api, "POST", "/usuarios", `{"nome":"Race","email":"race@email.com"}`).Code
		})
	}
	wg.Wait()
	close(codes)
	created := 0
	for c := range codes {
		if c == 201 {
			created++
		} else if c != 409 {
			t.Fatalf("status %d", c)
		}
	}
	if created != 1 {
		t.Fatalf("%d users created with one email", created)
	}
}

func TestPatchIsAJSONMergePatch(t *testing.T) {
	id, _ := createUser(t, `{"nome":"Carla","idade":40,"cidade":"Natal","endereco":{"rua":"A","numero":1}}`)
	w := call(t, api, "PATCH", "/usuarios/"+id, `{"idade":41,"cidade":null,"endereco":{"numero":2},"_id":"x"}`)
	expect(t, w, 200)
	u := decode[obj](t, w)["usuario"].(obj)
	if fmt.Sprint(u["idade"]) != "41" || u["cidade"] != nil || u["nome"] != "Carla" || u["_id"] != id {
		t.Fatalf("patched: %v", u)
	}
	if e := u["endereco"].(obj); e["rua"] != "A" || fmt.Sprint(e["numero"]) != "2" {
		t.Fatalf("nested merge: %v", e)
	}
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"nome":null}`), 400)
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"idade":3.5}`), 400)
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `[]`), 400)
}

func TestIfMatchMakesWritesCompareAndSwap(t *testing.T) {
	id, tag := createUser(t, `{"nome":"Dora"}`)
	w := call(t, api, "PATCH", "/usuarios/"+id, `{"idade":1}`, "If-Match", tag)
	expect(t, w, 200)
	newTag := w.Header().Get("ETag")
	if newTag == tag {
		t.Fatal("ETag did not change")
	}
	expect(t, call(t, api, "PUT", "/usuarios/"+id, `{"nome":"Dora"}`, "If-Match", tag), 412)
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"idade":2}`, "If-Match", tag), 412)
	expect(t, call(t, api, "DELETE", "/usuarios/"+id, "", "If-Match", tag), 412)
	expect(t, call(t, api, "DELETE", "/usuarios/"+id, "", "If-Match", `"abc"`), 412)
	if got := decode[obj](t, call(t, api, "GET", "/usuarios/"+id, "")); fmt.Sprint(got["idade"]) != "1" {
		t.Fatalf("a stale write changed the user: %v", got)
	}
	expect(t, call(t, api, "DELETE", "/usuarios/"+id, "", "If-Match", newTag), 200)
}

func TestDeleteUserRemovesItsEmailIndex(t *testing.T) {
	id, _ := createUser(t, `{"nome":"Eva","email":"eva.delete@email.com"}`)
	w := call(t, api, "DELETE", "/usuarios/"+id, "")
	expect(t, w, 200)
	if got := decode[obj](t, w); got["mensagem"] != "Usuário deletado" || got["id"] != id {
		t.Fatalf("answer: %v", got)
	}
	if countKeys(t, "/indices/email/eva.delete@email.com") != 0 {
		t.Fatal("email index left behind")
	}
	expect(t, call(t, api, "GET", "/usuarios/"+id, ""), 404)
	expect(t, call(t, api, "DELETE", "/usuarios/"+id, ""), 404)
}

func TestSearchIgnoresCaseAndAccents(t *testing.T) {
	id, _ := createUser(t, `{"nome":"Zé João Acentuação Busca"}`)
	createUser(t, `{"nome":"Pedro Busca"}`)
	for _, q := range []string{"ze joao", "ZÉ JOÃO", "acentuacao", "ACENTUAÇÃO", "o aCe"} {
		w := call(t, api, "GET", "/usuarios/buscar?nome="+urlEscape(q), "")
		expect(t, w, 200)
		found := decode[[]obj](t, w)
		if len(found) != 1 || found[0]["_id"] != id {
			t.Fatalf("search %q: %v", q, found)
		}
	}
	if found := decode[[]obj](t, call(t, api, "GET", "/usuarios/buscar?nome=busca", "")); len(found) < 2 {
		t.Fatalf("search busca: %v", found)
	}
	if found := decode[[]obj](t, call(t, api, "GET", "/usuarios/buscar?nome=zzzz-nada", "")); len(found) != 0 {
		t.Fatalf("search: %v", found)
	}
	expect(t, call(t, api, "GET", "/usuarios/buscar", ""), 400)
}

func urlEscape(s string) string { return (&url.URL{Path: s}).EscapedPath() }

func TestListUsersPagesAtOneRevision(t *testing.T) {
	all := decode[[]obj](t, call(t, api, "GET", "/usuarios", ""))
	for range 7 - min(len(all), 7) {
		createUser(t, `{"nome":"Página"}`)
	}
	all = decode[[]obj](t, call(t, api, "GET", "/usuarios", ""))
	var paged []obj
	next := "/usuarios?limite=3"
	for pages := 0; next != ""; pages++ {
		w := call(t, api, "GET", next, "")
		expect(t, w, 200)
		page := decode[[]obj](t, w)
		if len(page) > 3 {
			t.Fatalf("page of %d", len(page))
		}
		paged = append(paged, page...)
		next = ""
		if link := w.Header().Get("Link"); link != "" {
			next = strings.TrimPrefix(strings.Split(link, ">")[0], "<")
			if !strings.HasSuffix(link, `rel="next"`) || !strings.HasPrefix(next, "/usuarios?limite=3&cursor=") {
				t.Fatalf("Link: %s", link)
			}
			if pages == 0 {
				// Writes after the first page do not show in this listing.
				createUser(t, `{"nome":"Depois"}`)
			}
		}
	}
	if len(paged) != len(all) {
		t.Fatalf("paged %d users, listing has %d", len(paged), len(all))
	}
	for i := range all {
		if paged[i]["_id"] != all[i]["_id"] {
			t.Fatalf("page order differs at %d", i)
		}
	}
	for _, q := range []string{"limite=0", "limite=1001", "limite=abc", "limite=2&cursor=zzz", "limite=2&cursor=" + makeCursor(5, "")} {
		expect(t, call(t, api, "GET", "/usuarios?"+q, ""), 400)
	}
}

func TestListCursorOlderThanCompactionIsGone(t *testing.T) {
	st, api := ownMember(t)
	createUser := func(t testing.TB, body string) (string, string) {
		w := call(t, api, "POST", "/usuarios", body)
		expect(t, w, 201)
		return decode[obj](t, w)["id"].(string), w.Header().Get("ETag")
	}
	for range 3 {
		createUser(t, `{"nome":"Compactado"}`)
	}
	nextOf := func(first string) string {
		link := call(t, api, "GET", first, "").Header().Get("Link")
		return strings.TrimPrefix(strings.Split(link, ">")[0], "<")
	}
	next, nextFound := nextOf("/usuarios?limite=1"), nextOf("/usuarios/buscar?nome=compactado&limite=1")
	id, _ := createUser(t, `{"nome":"Compacta"}`)
	resp, _ := st.Client().Get(context.Background(), "/users/"+id)
	if _, err := st.Client().Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	expect(t, call(t, api, "GET", next, ""), http.StatusGone)
	expect(t, call(t, api, "GET", nextFound, ""), http.StatusGone)
}

func TestCursorFromTheFutureIsBadRequest(t *testing.T) {
	createUser(t, `{"nome":"Cursor do Futuro"}`)
	resp, err := st.Client().Get(context.Background(), "/users/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	future := resp.Header.Revision + 1_000_000
	for name, path := range map[string]string{
		"listing":          "/usuarios?limite=2&cursor=" + makeCursor(future, "x"),
		"search":           "/usuarios/buscar?nome=cursor+do+futuro&limite=2&cursor=" + makeCursor(future, "0"), // ids after "0": the user is found
		"search, no match": "/usuarios/buscar?nome=a&limite=2&cursor=" + makeCursor(future, "x"),                // ids after "x": none
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, call(t, api, "GET", path, ""), http.StatusBadRequest)
		})
	}
}

func TestSearchPagesLikeTheListing(t *testing.T) {
	var want []string
	for i := range 7 {
		id, _ := createUser(t, fmt.Sprintf(`{"nome":"Paginação da Busca %d"}`, i))
		want = append(want, id)
	}
	slices.Sort(want)
	var got []string
	next := "/usuarios/buscar?nome=paginacao%20da%20busca&limite=3"
	for pages := 0; next != ""; pages++ {
		w := call(t, api, "GET", next, "")
		expect(t, w, 200)
		page := decode[[]obj](t, w)
		if len(page) > 3 || (pages < 2 && len(page) != 3) {
			t.Fatalf("page %d has %d users", pages, len(page))
		}
		for _, u := range page {
			got = append(got, u["_id"].(string))
		}
		next = ""
		if link := w.Header().Get("Link"); link != "" {
			next = strings.TrimPrefix(strings.Split(link, ">")[0], "<")
			if !strings.HasSuffix(link, `rel="next"`) || !strings.HasPrefix(next, "/usuarios/buscar?nome=paginacao+da+busca&limite=3&cursor=") {
				t.Fatalf("Link: %s", link)
			}
		}
		if pages == 0 {
			// A match written after the first page, its id after every other: the
			// later pages are of the first page's revision, and leave it out.
			if _, err := st.CreateUser(context.Background(), "zzzz-depois-da-busca", "", []byte(`{"_id":"zzzz-depois-da-busca","nome":"Paginação da Busca depois","criado_em":"2026-11-29T00:00:00Z","atualizado_em":"2026-11-29T00:00:00Z"}`), store.Guard{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Client().Delete(context.Background(), "/users/zzzz-depois-da-busca") })
		}
		if pages > 3 {
			t.Fatal("the cursor does not move on")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged search found %v, want %v in id order", got, want)
	}
	// One match per page: the Link comes while more remain, and not after the last.
	w := call(t, api, "GET", "/usuarios/buscar?nome=paginacao%20da%20busca%206&limite=1", "")
	if found := decode[[]obj](t, w); len(found) != 1 || w.Header().Get("Link") != "" {
		t.Fatalf("single match: %v, Link %q", found, w.Header().Get("Link"))
	}
	for _, q := range []string{"limite=0", "limite=1001", "limite=abc", "limite=2&cursor=zzz"} {
		expect(t, call(t, api, "GET", "/usuarios/buscar?nome=busca&"+q, ""), 400)
	}
}

// Every JSON answer ends with a newline (json.Encoder's), so a shell prompt
// after curl starts on its own line: documents, lists, errors, the 201 built
// by hand, and a route that does not exist. Through a real server, on one
// kept-alive connection: a newline past a declared Content-Length would
// break it (it did, on gin's c.Data answers).
func TestEveryJSONAnswerEndsWithANewline(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var id string
	for i, r := range []struct{ method, path, body string }{
		{"PUT", "/config/fim-de-linha", `{"valor":1}`},
		{"GET", "/config/fim-de-linha", ""},
		{"GET", "/config", ""},
		{"POST", "/usuarios", `{"nome":"Fim de Linha"}`},
		{"GET", "/usuarios/{id}", ""},
		{"GET", "/usuarios?limite=1", ""},
		{"GET", "/usuarios/buscar?nome=nenhum-nome-assim", ""},
		{"POST", "/usuarios", `{"nome":""}`},
		{"GET", "/nao-existe", ""},
	} {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), r.method, srv.URL+strings.Replace(r.path, "{id}", id, 1), strings.NewReader(r.body))
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		if body := string(raw); !strings.HasSuffix(body, "}\n") && !strings.HasSuffix(body, "]\n") {
			t.Errorf("%s %s: %d %q, want a JSON answer ending in one newline", r.method, r.path, resp.StatusCode, body)
		}
		if i > 0 && !reused {
			t.Errorf("%s %s: a new connection: the server closed the one before", r.method, r.path)
		}
		if r.method == "POST" && resp.StatusCode == 201 {
			var u obj
			json.Unmarshal(raw, &u)
			id, _ = u["id"].(string)
		}
	}
}
