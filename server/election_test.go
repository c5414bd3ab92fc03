package server

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

func candidates(t testing.TB, election string) int64 {
	return countKeys(t, "/election/"+election+"/")
}

func TestElectionCampaignProclaimRenewAndResign(t *testing.T) {
	expect(t, call(t, api, "GET", "/eleicao/diretoria", ""), 404)
	w := call(t, api, "POST", "/eleicao/diretoria/candidatar", `{"candidato":"ana","valor":{"endereco":"10.0.0.1:5432"}}`)
	expect(t, w, 200)
	ana := decode[obj](t, w)
	if ana["mensagem"] != "Eleito" || ana["eleicao"] != "diretoria" || ana["candidato"] != "ana" || num(ana, "ttl") != 30 || ana["expira_em"] == nil {
		t.Fatalf("campaign: %v", ana)
	}
	// Someone else leads: 409 with the leader and the place, and the candidacy is withdrawn.
	w = call(t, api, "POST", "/eleicao/diretoria/candidatar", `{"candidato":"bia"}`)
	expect(t, w, 409)
	if got := decode[obj](t, w); got["erro"] != "Outro candidato lidera" || got["lider"] != "ana" || num(got, "posicao") != 1 {
		t.Fatalf("second candidate: %v", got)
	}
	if n := candidates(t, "diretoria"); n != 1 {
		t.Fatalf("%d candidates, want the leader alone", n)
	}
	leader := decode[obj](t, call(t, api, "GET", "/eleicao/diretoria", ""))
	if leader["lider"] != "ana" || token(leader) != token(ana) || num(leader, "ttl_restante") < 29 || leader["valor"].(obj)["endereco"] != "10.0.0.1:5432" {
		t.Fatalf("GET leader: %v", leader)
	}
	// Only the leader's token proclaims, renews or resigns.
	expect(t, call(t, api, "PUT", "/eleicao/diretoria", `{"token":1,"valor":"x"}`), 409)
	expect(t, call(t, api, "PUT", "/eleicao/diretoria", `{"token":1,"valor":null}`), 409) // null is a valor: past validation
	expect(t, call(t, api, "POST", "/eleicao/diretoria/renovar", `{"token":1}`), 409)
	expect(t, call(t, api, "DELETE", "/eleicao/diretoria?token=1", ""), 409)
	expect(t, call(t, api, "PUT", "/eleicao/diretoria", `{"token":`+token(ana)+`,"valor":{"endereco":"10.0.0.2:5432"}}`), 200)
	if v := decode[obj](t, call(t, api, "GET", "/eleicao/diretoria", ""))["valor"].(obj); v["endereco"] != "10.0.0.2:5432" {
		t.Fatalf("proclaimed value not seen: %v", v)
	}
	expect(t, call(t, api, "POST", "/eleicao/diretoria/renovar", `{"token":`+token(ana)+`}`), 200)
	found := false
	for _, e := range decode[[]obj](t, call(t, api, "GET", "/eleicao", "")) {
		found = found || (e["eleicao"] == "diretoria" && e["lider"] == "ana")
	}
	if !found {
		t.Fatal("GET /eleicao does not list the election")
	}
	expect(t, call(t, api, "DELETE", "/eleicao/diretoria?token="+token(ana), ""), 200)
	expect(t, call(t, api, "GET", "/eleicao/diretoria", ""), 404)
	expect(t, call(t, api, "DELETE", "/eleicao/diretoria?token="+token(ana), ""), 404)
	expect(t, call(t, api, "POST", "/eleicao/diretoria/renovar", `{"token":`+token(ana)+`}`), 404)
}

// TestElectionResignHandsOverAtOnce: the next candidate in line leads within
// 100 ms of the leader's resignation, with a larger token.
func TestElectionResignHandsOverAtOnce(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	first := decode[obj](t, call(t, api, "POST", "/eleicao/sucessao/candidatar", `{"candidato":"primeiro"}`))
	next := async(srv.Client(), "POST", srv.URL+"/eleicao/sucessao/candidatar", `{"candidato":"segundo","aguardar":30}`)
	await(t, "the second candidate in line", func() bool { return candidates(t, "sucessao") == 2 })
	if got := decode[obj](t, call(t, api, "GET", "/eleicao/sucessao", "")); got["lider"] != "primeiro" || len(got["candidatos"].([]any)) != 2 {
		t.Fatalf("before resigning: %v", got)
	}
	resigned := time.Now()
	expect(t, call(t, api, "DELETE", "/eleicao/sucessao?token="+token(first), ""), 200)
	r := got200(t, next)
	if d := r.at.Sub(resigned); d > 100*time.Millisecond {
		t.Fatalf("the next candidate led %s after the resignation", d)
	}
	if r.body["candidato"] != "segundo" || num(r.body, "token") <= num(first, "token") {
		t.Fatalf("next leader: %v after token %v", r.body, first["token"])
	}
	expect(t, call(t, api, "DELETE", "/eleicao/sucessao?token="+token(r.body), ""), 200)
}

// TestElectionLeaderThatStopsRenewingLosesLeadership within TTL + 1 s, and the
// candidate waiting in line leads then.
func TestElectionLeaderThatStopsRenewingLosesLeadership(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	gone := decode[obj](t, call(t, api, "POST", "/eleicao/abandono/candidatar", `{"candidato":"sumido","ttl":5}`))
	elected := time.Now()
	next := async(srv.Client(), "POST", srv.URL+"/eleicao/abandono/candidatar", `{"candidato":"paciente","ttl":5,"aguardar":20}`)
	r := got200(t, next)
	if d := r.at.Sub(elected); d > 6*time.Second {
		t.Fatalf("a leader with TTL 5 that stopped renewing led for %s", d)
	}
	if r.body["candidato"] != "paciente" {
		t.Fatalf("next leader: %v", r.body)
	}
	expect(t, call(t, api, "POST", "/eleicao/abandono/renovar", `{"token":`+token(gone)+`}`), 409)
	expect(t, call(t, api, "DELETE", "/eleicao/abandono?token="+token(r.body), ""), 200)
}

// TestElectionAlongsideEtcdsConcurrencyElection: a Go program with etcd's own
// concurrency.Election and an HTTP candidate share one line and take turns.
func TestElectionAlongsideEtcdsConcurrencyElection(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	session, err := concurrency.NewSession(st.Client(), concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	goProgram := concurrency.NewElection(session, "/election/misto")
	if err := goProgram.Campaign(ctx, "programa-go"); err != nil {
		t.Fatal(err)
	}
	// The Go program leads: HTTP sees it, and an HTTP candidate must wait.
	leader := decode[obj](t, call(t, api, "GET", "/eleicao/misto", ""))
	if leader["valor"] != "programa-go" || num(leader, "token") != goProgram.Rev() {
		t.Fatalf("HTTP sees %v, want the Go program leading at revision %d", leader, goProgram.Rev())
	}
	expect(t, call(t, api, "POST", "/eleicao/misto/candidatar", `{"candidato":"http"}`), 409)
	httpCandidate := async(srv.Client(), "POST", srv.URL+"/eleicao/misto/candidatar", `{"candidato":"http","valor":1,"aguardar":20}`)
	await(t, "the HTTP candidate in line", func() bool { return candidates(t, "misto") == 2 })
	if err := goProgram.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	r := got200(t, httpCandidate)
	if num(r.body, "token") <= goProgram.Rev() {
		t.Fatalf("HTTP leader's token %v, Go program's %d", r.body["token"], goProgram.Rev())
	}
	// The Go program's view agrees; it campaigns again and waits its turn.
	if got, err := goProgram.Leader(ctx); err != nil || got.Kvs[0].CreateRevision != num(r.body, "token") {
		t.Fatalf("concurrency.Election sees leader %v (%v)", got, err)
	}
	again := make(chan error, 1)
	go func() { again <- goProgram.Campaign(ctx, "programa-go-de-novo") }()
	await(t, "the Go program in line", func() bool { return candidates(t, "misto") == 2 })
	select {
	case err := <-again:
		t.Fatalf("the Go program led while the HTTP candidate did: %v", err)
	default:
	}
	expect(t, call(t, api, "DELETE", "/eleicao/misto?token="+token(r.body), ""), 200)
	if err := <-again; err != nil {
		t.Fatal(err)
	}
	if got := decode[obj](t, call(t, api, "GET", "/eleicao/misto", "")); got["valor"] != "programa-go-de-novo" || num(got, "token") != goProgram.Rev() {
		t.Fatalf("after the HTTP leader resigned: %v", got)
	}
	if err := goProgram.Resign(ctx); err != nil {
		t.Fatal(err)
	}
}
