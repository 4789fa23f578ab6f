package alert

import (
	"testing"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

// BenchmarkObserve measures what the query path pays per answer: nothing
// but a comparison for verdicts that do not alert, a channel send for
// those that do, and a counter when the queue is full.
func BenchmarkObserve(b *testing.B) {
	newNotifier := func(b *testing.B, queue int) *Notifier {
		n, err := NewSlack(config.Slack{Token: testToken, Channel: testChannel, QueueSize: queue,
			Verdicts: []string{"dangerous", "suspicious"}}, discard(), nil)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	clean := &reputation.Answer{IP: "192.0.2.1", Score: 100, Verdict: reputation.VerdictNone, Action: reputation.ActionAllow}
	bad := dangerous("203.0.113.7")

	b.Run("verdict filtered out", func(b *testing.B) {
		n := newNotifier(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			n.Observe(clean)
		}
	})
	b.Run("alert queued", func(b *testing.B) {
		n := newNotifier(b, 1024)
		done := make(chan struct{})
		go func() { // a sender that keeps the queue from filling
			for {
				select {
				case <-n.queue:
				case <-done:
					return
				}
			}
		}()
		b.Cleanup(func() { close(done) })
		b.ReportAllocs()
		for b.Loop() {
			n.Observe(bad)
		}
	})
	b.Run("alert dropped on a full queue", func(b *testing.B) {
		n := newNotifier(b, 1)
		n.Observe(bad)
		b.ReportAllocs()
		for b.Loop() {
			n.Observe(bad)
		}
	})
	b.Run("verdict filtered out in parallel", func(b *testing.B) {
		n := newNotifier(b, 1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Observe(clean)
			}
		})
	})
}
