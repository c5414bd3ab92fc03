package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/internal/testenv"
	"etcdapi/store"
)

var st *store.Store

func TestMain(m *testing.M) {
	st = testenv.OpenStore(testenv.StoreConfig())
	code := m.Run()
	st.Close()
	os.Exit(code)
}

func user(id, nome string) []byte {
	return fmt.Appendf(nil, `{"_id":%q,"nome":%q}`, id, nome)
}

func found(t testing.TB, s *store.Store, q string) []string {
	t.Helper()
	p, err := s.SearchUsers(context.Background(), q, 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(p.Docs))
	for i, d := range p.Docs {
		out[i] = string(d)
	}
	return out
}

// names are the nomes of a page's users, in its order.
func names(docs [][]byte) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		var u struct{ Nome string }
		json.Unmarshal(d, &u)
		out[i] = u.Nome
	}
	return out
}

func TestSearchSeesEveryAcknowledgedWrite(t *testing.T) {
	ctx := context.Background()
	for i := range 50 {
		id := fmt.Sprintf("ryw-%02d", i)
		if _, err := st.CreateUser(ctx, id, "", user(id, fmt.Sprintf("Leitura Própria %02d", i)), store.Guard{}); err != nil {
			t.Fatal(err)
		}
		if got := found(t, st, fmt.Sprintf("leitura propria %02d", i)); len(got) != 1 {
			t.Fatalf("search right after creating %s: %v", id, got)
		}
	}
	if _, _, err := st.UpdateUser(ctx, "ryw-00", 0, store.Guard{}, func([]byte) ([]byte, error) { return user("ryw-00", "Renomeado"), nil }); err != nil {
		t.Fatal(err)
	}
	if got := found(t, st, "leitura propria 00"); len(got) != 0 {
		t.Fatalf("old name still found after update: %v", got)
	}
	if err := st.DeleteUser(ctx, "ryw-01", 0, store.Guard{}); err != nil {
		t.Fatal(err)
	}
	if got := found(t, st, "leitura propria 01"); len(got) != 0 {
		t.Fatalf("deleted user still found: %v", got)
	}
	if got := found(t, st, "leitura propria"); len(got) != 48 {
		t.Fatalf("%d found, want 48", len(got))
	}
	// A write elsewhere moves etcd's revision past the last /users/ event: the
	// index still answers at once (a progress notification says it caught up).
	st.PutConfig(ctx, "outra", []byte("1"), 0, store.Guard{})
	began := time.Now()
	found(t, st, "renomeado")
	if d := time.Since(began); d > time.Second {
		t.Fatalf("search after a config write took %s", d)
	}
}

func TestSearchIndexStartsOverAfterCompaction(t *testing.T) {
	ctx := context.Background()
	// A member of its own: compacting the shared one would cut other tests' history.
	st := testenv.OpenStore(testenv.StoreConfig())
	defer st.Close()
	st.CreateUser(ctx, "compacta-1", "", user("compacta-1", "Antes da Compactação"), store.Guard{})
	resp, _ := st.Client().Put(ctx, "/config/app/compactar", "1")
	if _, err := st.Client().Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// A second process whose index starts after the compaction lists, then follows.
	cfg := testenv.StoreConfig()
	cfg.Endpoints = st.ClientURLs()
	other, err := store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := found(t, other, "antes da compactacao"); len(got) != 1 {
		t.Fatalf("after compaction: %v", got)
	}
}

func TestTwoProcessesOnOneClusterReadEachOthersWrites(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.StoreConfig()
	cfg.Endpoints = st.ClientURLs() // a second etcdapi, against the first one's member
	other, err := store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := range 20 {
		id := fmt.Sprintf("dois-%02d", i)
		if _, err := st.CreateUser(ctx, id, "", user(id, fmt.Sprintf("Processo Vizinho %02d", i)), store.Guard{}); err != nil {
			t.Fatal(err)
		}
		if got := found(t, other, fmt.Sprintf("processo vizinho %02d", i)); len(got) != 1 {
			t.Fatalf("the other process does not see %s at once: %v", id, got)
		}
		if err := other.DeleteUser(ctx, id, 0, store.Guard{}); err != nil {
			t.Fatal(err)
		}
		if got := found(t, st, fmt.Sprintf("processo vizinho %02d", i)); len(got) != 0 {
			t.Fatalf("the first process still sees deleted %s: %v", id, got)
		}
	}
}

func TestEachUserPageReadsEveryUserOnceAtOneRevision(t *testing.T) {
	ctx := context.Background()
	// Enough users for the hex-prefix ranges to kick in, plus ids that are not UUIDs.
	ids := []string{"!primeiro", "ZZZ-maiusculo", "zzz-ultimo", "9-meio", ":entre"}
	for i := range 17000 {
		ids = append(ids, fmt.Sprintf("%08x-0000-4000-8000-%012d", uint32(i)*2654435761, i))
	}
	for i := 0; i < len(ids); i += 100 {
		ops := []clientv3.Op{}
		for _, id := range ids[i:min(i+100, len(ids))] {
			ops = append(ops, clientv3.OpPut("/users/"+id, string(user(id, "Paginado"))))
		}
		if _, err := st.Client().Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	found(t, st, "paginado") // the index has caught up: the ranges are sized from it
	all, _ := st.Client().Get(ctx, "/users/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	seen := map[string]int{}
	err := st.EachUserPage(ctx, func(docs [][]byte) error {
		for _, d := range docs {
			var u struct {
				ID string `json:"_id"`
			}
			json.Unmarshal(d, &u)
			seen[u.ID]++
			if len(seen) == 10 {
				st.Client().Put(ctx, "/users/depois-do-inicio", string(user("depois-do-inicio", "Tarde")))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(all.Kvs) {
		t.Fatalf("%d users read, %d in etcd", len(seen), len(all.Kvs))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s read %d times", id, n)
		}
	}
	if seen["depois-do-inicio"] != 0 {
		t.Fatal("a user written after the listing began is in it")
	}
}

// Pages of one search read the users at the first page's revision: a user
// renamed into the search after that page is not shown under its old name.
func TestSearchPagesShowOnlyWhatMatchedAtTheirRevision(t *testing.T) {
	ctx := context.Background()
	rename := func(id, nome string) {
		t.Helper()
		if _, _, err := st.UpdateUser(ctx, id, 0, store.Guard{}, func([]byte) ([]byte, error) { return user(id, nome), nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range [][2]string{{"pag-1", "Página Fiel 1"}, {"pag-2", "Outro Nome"}, {"pag-3", "Página Fiel 3"}} {
		if _, err := st.CreateUser(ctx, u[0], "", user(u[0], u[1]), store.Guard{}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := st.SearchUsers(ctx, "pagina fiel", 0, "", 1)
	if err != nil || len(first.Docs) != 1 || !first.More {
		t.Fatalf("first page: %v %+v", err, first)
	}
	rename("pag-2", "Página Fiel 2") // matches now, not at the first page's revision
	next, err := st.SearchUsers(ctx, "pagina fiel", first.Revision, first.LastID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(next.Docs); !slices.Equal(got, []string{"Página Fiel 3"}) {
		t.Fatalf("second page at revision %d: %q", first.Revision, got)
	}
}

// A broad page is read from etcd as one range. Keys between its users that
// the index leaves out (values another client wrote) fill that range past
// its limit: the users beyond are read one by one, none is lost.
func TestABroadPageReadsEveryUserPastForeignKeys(t *testing.T) {
	ctx := context.Background()
	st := testenv.OpenStore(testenv.StoreConfig()) // its own: every user matches, the page is dense
	defer st.Close()
	var want []string
	for i := range 4 {
		id := fmt.Sprintf("densa-%d", i)
		if _, err := st.CreateUser(ctx, id, "", user(id, fmt.Sprintf("Densa %d", i)), store.Guard{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("Densa %d", i))
		for j := range 20 { // 20 foreign keys after each user
			if _, err := st.Client().Put(ctx, fmt.Sprintf("/users/densa-%d-lixo-%02d", i, j), "não é JSON"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first search may wait for the index; the second finds it caught up
	// and reads the users in the transaction that shows it.
	for range 2 {
		p, err := st.SearchUsers(ctx, "densa", 0, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(p.Docs); !slices.Equal(got, want) {
			t.Fatalf("page: %q, want %q", got, want)
		}
	}
}

// spread is user i's id, spread over the hex prefixes like UUIDs.
func spread(i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012d", uint32(i)*2654435761, i)
}

// TestSearchRightAfterARestart: the first search after a restart sees every
// write made before it, the index filled from several key ranges read at once
// (that it fills before the member is ready: restart_test.go).
func TestSearchRightAfterARestart(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.StoreConfig()
	cfg.Ephemeral, cfg.DataDir = false, t.TempDir()
	s := testenv.OpenStore(cfg)
	// Enough users for the fill to read several key ranges at once.
	const n = 17000
	for i := 0; i < n; i += 100 {
		ops := make([]clientv3.Op, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(store.UserKey(spread(j)), string(user(spread(j), fmt.Sprintf("Reinício %05d", j)))))
		}
		if _, err := s.Client().Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	gone := spread(7)
	if err := s.DeleteUser(ctx, gone, 0, store.Guard{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = testenv.OpenStore(cfg)
	defer s.Close()
	if got := found(t, s, "reinicio"); len(got) != n-1 {
		t.Fatalf("first search after the restart: %d found, want %d", len(got), n-1)
	}
	if got := found(t, s, "reinicio 00007"); len(got) != 0 {
		t.Fatalf("deleted user found after the restart: %v", got)
	}
	id := "depois-0000"
	if _, err := s.CreateUser(ctx, id, "", user(id, "Reinício Depois"), store.Guard{}); err != nil {
		t.Fatal(err)
	}
	if got := found(t, s, "reinicio depois"); len(got) != 1 {
		t.Fatalf("user created after the restart: %v", got)
	}
}

// A search right after a write that adds to its answer: the index may not
// have it yet when the search begins, and the users read for its older
// answer must not be taken for the new one.
func TestSearchRightAfterAWriteThatAddsToItsAnswer(t *testing.T) {
	ctx := context.Background()
	run := time.Now().UnixNano() % 1e9 // a fresh answer each time the test runs
	for i := range 30 {
		id := fmt.Sprintf("cresce-%d-%02d", run, i)
		if _, err := st.CreateUser(ctx, id, "", user(id, fmt.Sprintf("Resposta Que Cresce %d %02d", run, i)), store.Guard{}); err != nil {
			t.Fatal(err)
		}
		if got := found(t, st, fmt.Sprintf("resposta que cresce %d", run)); len(got) != i+1 {
			t.Fatalf("after %d users: %d found", i+1, len(got))
		}
	}
}
