package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // profiles of the server under load, on the bare handler's port
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/kelseyhightower/envconfig"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"etcdapi/server"
	"etcdapi/store"
)

// serve is the child process of the benchmark: the API, built as main.go builds
// it, and beside it on another port the bare handlers, plain net/http handlers
// that do nothing but the API's etcd operation on the same in-process client.
// The bare port also serves net/http/pprof.
func serve(bareAddr, logFile string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scfg, hcfg := settings()
	level := slog.LevelInfo // etcdapi's default LOG_LEVEL: one access log line per request
	level.UnmarshalText([]byte(os.Getenv("LOG_LEVEL")))
	f, err := os.Create(logFile)
	check(err)
	defer f.Close()
	lw := server.NewLogWriter(f) // as main.go does
	defer lw.Close()
	log := slog.New(server.NewLogHandler(lw, false, level))
	st, err := store.Open(ctx, scfg, log)
	check(err)
	defer st.Close()
	api := &http.Server{Addr: hcfg.Addr, Handler: server.New(st, hcfg, log), ReadHeaderTimeout: 10 * time.Second}
	bare := &http.Server{Addr: bareAddr, Handler: bareHandlers(st.Client()), ReadHeaderTimeout: 10 * time.Second}
	for _, s := range []*http.Server{api, bare} {
		ln, err := net.Listen("tcp", s.Addr)
		check(err)
		go s.Serve(ln)
	}
	<-ctx.Done()
	api.Shutdown(context.Background())
	bare.Shutdown(context.Background())
}

// settings reads etcdapi's settings from the environment, as main.go does.
func settings() (store.Config, server.Config) {
	var scfg store.Config
	var hcfg server.Config
	check(envconfig.Process("", &scfg))
	check(envconfig.Process("", &hcfg))
	return scfg, hcfg
}

// bareHandlers answer the benchmark's requests with the same etcd operation as
// the API and nothing else: no validation, no logging, no metrics.
func bareHandlers(cli *clientv3.Client) http.Handler {
	mux := http.DefaultServeMux // with net/http/pprof's handlers
	mux.HandleFunc("GET /usuarios/{id}", func(w http.ResponseWriter, r *http.Request) {
		resp, err := cli.Get(r.Context(), "/users/"+r.PathValue("id"))
		if err != nil || len(resp.Kvs) == 0 {
			http.Error(w, "{}", 404)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp.Kvs[0].Value)
	})
	// The body of the benchmark's POST carries "email":"cargaN@email.com"; the
	// bare handler takes the address from the Email header instead of parsing.
	create := func(w http.ResponseWriter, r *http.Request, body []byte, email string) {
		id := uuid.NewString()
		email = "/indices/email/" + email
		resp, err := cli.Txn(r.Context()).
			If(clientv3.Compare(clientv3.CreateRevision(email), "=", 0)).
			Then(clientv3.OpPut("/users/"+id, string(body)), clientv3.OpPut(email, id)).Commit()
		if err != nil || !resp.Succeeded {
			http.Error(w, "{}", http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"id":%q}`, id)
	}
	mux.HandleFunc("POST /usuarios", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		create(w, r, body, r.Header.Get("Email"))
	})
	// The same, decoding the body as the API must to validate it.
	mux.HandleFunc("POST /decodificar/usuarios", func(w http.ResponseWriter, r *http.Request) {
		var u struct {
			Nome, Email, Cidade string
			Idade               int
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &u); err != nil {
			http.Error(w, "{}", http.StatusBadRequest)
			return
		}
		create(w, r, body, u.Email)
	})
	mux.HandleFunc("PUT /config/{k}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := cli.Put(r.Context(), "/config/app/"+r.PathValue("k"), string(body)); err != nil {
			http.Error(w, "{}", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	})
	return mux
}

// etcdAlone is the restart's reference: an etcd member alone on the data dir,
// with the settings etcdapi gives a lone member (raft timing, snapshots, log
// segments), answering /readyz 200 once etcd says it is ready.
func etcdAlone() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scfg, hcfg := settings()
	ec := embed.NewConfig()
	ec.Name, ec.Dir = scfg.Name, scfg.DataDir
	ec.ListenClientUrls, ec.AdvertiseClientUrls = scfg.ListenClientURLs, scfg.ListenClientURLs
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = scfg.ListenPeerURLs, scfg.ListenPeerURLs
	ec.InitialCluster = ec.InitialClusterFromName(scfg.Name)
	ec.TickMs, ec.ElectionMs, ec.SnapshotCount, ec.MaxWalFiles = 20, 200, 2000, 2
	ec.QuotaBackendBytes = scfg.QuotaBytes
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop()) // its shutdown logs errors
	// Listening first, as etcdapi does: /readyz answers 503 until etcd is ready.
	ln, err := net.Listen("tcp", hcfg.Addr)
	check(err)
	var ready atomic.Bool
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go api.Serve(ln)
	e, err := embed.StartEtcd(ec)
	check(err)
	defer e.Close()
	<-e.Server.ReadyNotify()
	_, err = v3client.New(e.Server).Get(ctx, "/readyz") // a linearizable read, as etcdapi's /readyz makes
	check(err)
	ready.Store(true)
	<-ctx.Done()
	api.Shutdown(context.Background())
}
