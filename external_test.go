package main

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/internal/testenv"
)

func TestExternalModeServesTheAPIFromARealEtcd(t *testing.T) {
	members := testenv.NewEtcdCluster(t, 1)
	members[0].Start(t)
	env := []string{"HTTP_ADDR=127.0.0.1:" + itoa(testenv.FreePort()), "ETCD_ENDPOINTS=" + members[0].ClientURL, "LOG_LEVEL=warn"}
	p := start(t, env).ready(t)
	if !strings.Contains(p.out.String(), "external") {
		t.Fatalf("banner does not say external:\n%s", p.out)
	}
	code, created := postJSON(t, p.API+"/usuarios", `{"nome":"Externa","email":"externa@email.com"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, created)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{members[0].ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/users/"+created["id"].(string))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("user not in the external etcd: %v %v", resp, err)
	}
	if code, got := getJSON(t, p.API+"/usuarios/"+created["id"].(string)); code != 200 || got["nome"] != "Externa" {
		t.Fatalf("get: %d %v", code, got)
	}
	// Configuration history works against etcd 3.4 too.
	putJSON(t, p.API+"/config/ext", `{"valor":1}`)
	putJSON(t, p.API+"/config/ext", `{"valor":2}`)
	if code, h := getArray(t, p.API+"/config/ext/historico"); code != 200 || len(h) != 2 {
		t.Fatalf("history: %d %v", code, h)
	}
}
