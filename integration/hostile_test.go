package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/tools/attack"
)

// TestHostileClients replays the hostile requests of tools/attack, at a
// quarter of the figures, against the real binary with a 128 MiB
// in-flight push budget, and checks after each that the process still
// answers and that its peak resident memory stayed bounded: the budget plus
// what an idle process holds, with room for the runtime's slack. With the
// body reader that doubled its buffer, three 512 MiB gzip bombs took it to
// 547 MiB; reading in pooled pieces, to about 200 MiB. `bash
// tools/attack.sh` runs them at full size in a 2 GiB memory cgroup.
func TestHostileClients(t *testing.T) {
	requireIntegration(t)
	node := newCanopyNodes(t, logDir(t), 1, "-auth.multitenancy-enabled", "-ingester.replication-factor=1",
		"-distributor.instance-limits.max-inflight-push-requests-bytes=134217728")[0]
	node.start(t)
	node.waitReady(t, 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results, err := attack.Run(ctx, attack.Config{URL: node.url(), PID: node.pid(), Scale: 0.25})
	require.NoError(t, err)
	require.Len(t, results, len(attack.Names()))
	for _, r := range results {
		t.Logf("%s (%s): peak RSS %d MiB, answers %s, took %s", r.Name, r.What, r.PeakRSS>>20, r.StatusSummary(), r.Took.Round(time.Millisecond))
		require.True(t, r.Alive, "%s: the process stopped answering /ready", r.Name)
		require.Less(t, r.PeakRSS, int64(450<<20), "%s: peak RSS", r.Name)
		for code := range r.Statuses {
			require.NotEqual(t, 500, code, "%s: a hostile request is the client's error, or a retryable overload", r.Name)
			require.NotEqual(t, 200, code, "%s: a hostile request was accepted", r.Name)
		}
	}
}
