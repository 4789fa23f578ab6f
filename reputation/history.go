package reputation

import (
	"cmp"
	"net/netip"
	"slices"
)

// History returns every listing and episode in the index whose prefix
// contains addr, open or ended, oldest first. It is never nil. The
// matches' Source pointers stay valid for as long as the caller keeps
// them, whatever later Swaps do.
func (s *Service) History(addr netip.Addr) []Match {
	idx := s.cur.Load().idx
	ms, _ := idx.appendMatches(make([]Match, 0, 4), canonical(addr), true)
	slices.SortStableFunc(ms, func(a, b Match) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Source.Name, b.Source.Name); c != 0 {
			return c
		}
		return cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits())
	})
	return ms
}
