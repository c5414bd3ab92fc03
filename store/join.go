package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// join adds this member to the cluster of the running member at cfg.Join and
// returns the initial cluster to start with (state "existing"). A member that
// was added before (a start that failed midway) is found and reused.
func join(ctx context.Context, cfg Config, peerURLs []string, zl *zap.Logger) (string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cfg.Join}, DialTimeout: 5 * time.Second, Logger: zl})
	if err != nil {
		return "", fmt.Errorf("ETCD_JOIN %s: %w", cfg.Join, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return "", fmt.Errorf("ETCD_JOIN %s does not answer: %w", cfg.Join, err)
	}
	members := list.Members
	added := slices.ContainsFunc(members, func(m *etcdserverpb.Member) bool { return slices.Equal(m.PeerURLs, peerURLs) })
	if !added {
		resp, err := cli.MemberAdd(ctx, peerURLs)
		// etcd refuses a member while its leader has been connected to a
		// majority for less than 5 s (a member that just joined): wait that out.
		for errors.Is(err, rpctypes.ErrUnhealthy) && ctx.Err() == nil {
			time.Sleep(time.Second)
			resp, err = cli.MemberAdd(ctx, peerURLs)
		}
		if err != nil {
			return "", fmt.Errorf("ETCD_JOIN %s: adding this member: %w", cfg.Join, err)
		}
		members = resp.Members
	}
	var initial []string
	for _, m := range members {
		name := m.Name
		if slices.Equal(m.PeerURLs, peerURLs) {
			name = cfg.Name // the new member has no name until it starts
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	return strings.Join(initial, ","), nil
}
