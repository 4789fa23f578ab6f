package reputation

import (
	"net/netip"
	"testing"
)

func TestDoorkeeperAdmitsOnTheSecondSighting(t *testing.T) {
	d := newDoorkeeper(1000)
	a := netip.MustParseAddr("198.51.100.7")
	if d.admit(a) {
		t.Fatal("a first sighting was admitted")
	}
	if !d.admit(a) {
		t.Fatal("a second sighting was not admitted")
	}
	if d.admit(a) {
		t.Fatal("an admitted address should be forgotten: the cache holds it now")
	}
}

func TestServiceWithDoorkeeperCachesRepeatedAddressesOnly(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{Doorkeeper: true})
	listed := netip.MustParseAddr("192.0.2.10")

	first := s.AppendJSON(nil, listed)
	if got := s.CacheStats().Entries; got != 0 {
		t.Fatalf("after one miss the cache holds %d entries, want 0", got)
	}
	second := s.AppendJSON(nil, listed)
	if got := s.CacheStats().Entries; got != 1 {
		t.Fatalf("after a second miss the cache holds %d entries, want 1", got)
	}
	if string(first) != string(second) {
		t.Errorf("uncached and cached answers differ:\n%s\n%s", first, second)
	}
	if j := s.Judge(listed); j.Action != s.Check(listed).Action {
		t.Errorf("judge %+v disagrees with check", j)
	}
	if j := s.Judge(netip.MustParseAddr("203.0.113.99")); j.Verdict == "" {
		t.Error("an uncached judgement is empty")
	}
}

func BenchmarkAppendJSONMissDoorkeeper(b *testing.B) {
	clock := &fakeClock{t: t0}
	s := newTestService(b, serviceData(b), clock, ServiceOptions{Doorkeeper: true})
	var buf []byte
	i := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		i++
		a := netip.AddrFrom4([4]byte{45, byte(i >> 16), byte(i >> 8), byte(i)})
		buf = s.AppendJSON(buf[:0], a)
	}
}
