package enrich

import (
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
)

// Warner matches addresses and ranges against MISP warninglists for the
// reputation package. It exists because package misp cannot return
// reputation.Warning (reputation imports config, which imports misp): it
// converts the precomputed warnings of misp.Warninglists once, so lookups
// stay free of allocation. It is immutable and safe for concurrent use.
type Warner struct {
	table bart.Table[[]reputation.Warning]
}

var _ reputation.Warner = (*Warner)(nil)

// NewWarner builds a Warner from loaded warninglists; nil gives a Warner
// that matches nothing. The Warner does not keep w.
func NewWarner(w *misp.Warninglists) *Warner {
	out := &Warner{}
	for p, ws := range w.All() {
		conv := make([]reputation.Warning, len(ws))
		for i, x := range ws {
			conv[i] = reputation.Warning{List: x.List, Match: x.Match}
		}
		out.table.Insert(p, conv)
	}
	return out
}

// Warnings returns the warninglist hits for p, as misp.Warninglists.Warnings
// does: one per list, with the list's broadest range containing p. It
// returns nil, without allocating, when nothing matches. The returned slice
// is shared and must not be modified.
func (w *Warner) Warnings(p netip.Prefix) []reputation.Warning {
	if w == nil || !p.IsValid() {
		return nil
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	ws, _ := w.table.LookupPrefix(p.Masked())
	return slices.Clip(ws)
}
