package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gaissmai/bart"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// Bounds on eval's inputs: an address file is a list, not a dump, and the
// random sample has to fit a run of a few minutes.
const (
	maxEvalFileBytes = 256 << 20
	maxEvalRandom    = 10_000_000
	// maxDraws bounds the random draws per negative wanted, so that a
	// filter rejecting nearly everything ends with an error, not a hang.
	maxDraws = 1000
)

// evalReport is what eval prints, as text or (--json) as this JSON.
type evalReport struct {
	Excluded  []string  `json:"excluded"`
	Prefixes  int       `json:"index_prefixes"`
	Positives evalSet   `json:"positives"`
	Negatives evalSet   `json:"negatives"`
	AUC       jsonFloat `json:"roc_auc"`
	TPRAt1    jsonFloat `json:"tpr_at_1pct_fpr"`
	TPRAt01   jsonFloat `json:"tpr_at_0.1pct_fpr"`
}

// evalSet describes one side of the evaluation: where its addresses came
// from, how many were scored and how many were left out, and why.
type evalSet struct {
	Source string `json:"source"`
	// Entries is the number of addresses and ranges read (one address is
	// drawn from each range).
	Entries int `json:"entries"`
	Scored  int `json:"scored"`
	// Reserved counts addresses in reserved space, which are not scored.
	Reserved int `json:"skipped_reserved"`
	// Listed counts addresses skipped because the loaded index lists them
	// (--unlisted-positives, --unlisted-negatives).
	Listed int `json:"skipped_listed"`
	// Positive counts negatives skipped because the positives list them.
	Positive  int              `json:"skipped_positive,omitempty"`
	Histogram []reputation.Bin `json:"histogram"`
	Mean      jsonFloat        `json:"mean_score"`
	scores    []float64
}

// jsonFloat is a float that encodes NaN (an empty set) as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(math.Round(float64(f)*1e6) / 1e6)
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("eval", stderr)
	positives := fs.String("positives", "", "address list (freetext) of known-bad addresses: required")
	negatives := fs.String("negatives", "", "address list (freetext) of addresses taken as benign")
	random := fs.Int("random", 0, "draw this many random routable IPv4 addresses as negatives (announced space when an ASN database is loaded)")
	seed := fs.Uint64("seed", 1, "seed for the random negatives and for the address drawn from each listed range")
	exclude := fs.String("exclude", "", "comma-separated feeds to leave out of the index (leave-one-feed-out)")
	unlistedPos := fs.Bool("unlisted-positives", false, "score only positives that no loaded source lists, now or in history")
	unlistedNeg := fs.Bool("unlisted-negatives", false, "score only negatives that no loaded source lists, now or in history")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	dump := fs.String("dump", "", "write every scored address's answer to this file, one JSON object a line, with a \"set\" field")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rampart eval [--config FILE] --positives FILE [--negatives FILE | --random N] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	case *positives == "":
		fmt.Fprintln(stderr, "--positives is required")
		fs.Usage()
		return errUsage
	case (*negatives == "") == (*random <= 0):
		fmt.Fprintln(stderr, "give exactly one of --negatives FILE and --random N")
		fs.Usage()
		return errUsage
	case *random > maxEvalRandom:
		return fmt.Errorf("--random: at most %d", maxEvalRandom)
	}
	posList, err := readAddressFile(*positives)
	if err != nil {
		return fmt.Errorf("read positives: %w", err)
	}
	var negList []netip.Prefix
	if *negatives != "" {
		if negList, err = readAddressFile(*negatives); err != nil {
			return fmt.Errorf("read negatives: %w", err)
		}
	}

	a, err := loadApp(ctx, *configPath)
	if err != nil {
		return err
	}
	defer a.close()
	rep := &evalReport{Excluded: splitList(*exclude)}
	if len(rep.Excluded) > 0 {
		idx, err := buildWithout(ctx, a, rep.Excluded)
		if err != nil {
			return err
		}
		a.service.Swap(idx)
	}
	rep.Prefixes = a.service.Index().Len()
	if rep.Prefixes == 0 {
		fmt.Fprintln(stderr, "note: the index holds no listings; run 'rampart sync' first")
	}

	var dumpEnc *json.Encoder
	if *dump != "" {
		f, err := os.Create(*dump)
		if err != nil {
			return fmt.Errorf("--dump: %w", err)
		}
		defer f.Close()
		dumpEnc = json.NewEncoder(f)
	}
	score := func(set *evalSet, name string, addr netip.Addr, unlistedOnly bool) error {
		ans, ok := scoreInto(a.service, set, addr, unlistedOnly)
		if !ok || dumpEnc == nil {
			return nil
		}
		c := a.service.Context(addr)
		var bits int
		var ann uint64
		if a.enricher != nil {
			if p, asn, ok := a.enricher.Network(addr); ok {
				bits = p.Bits()
				ann = a.enricher.Announced(asn)
			}
		}
		if err := dumpEnc.Encode(struct {
			Set string `json:"set"`
			*reputation.Answer
			Context *reputation.Context `json:"context"`
			Bits    int                 `json:"bits"`
			Ann     uint64              `json:"ann"`
		}{name, &ans, &c, bits, ann}); err != nil {
			return fmt.Errorf("--dump: %w", err)
		}
		return nil
	}

	rng := rand.New(rand.NewPCG(*seed, 0x72616d70617274)) // "rampart"
	rep.Positives = evalSet{Source: *positives, Entries: len(posList)}
	for _, addr := range drawFromEach(posList, rng) {
		if err := score(&rep.Positives, "positive", addr, *unlistedPos); err != nil {
			return err
		}
	}

	var pos bart.Table[struct{}]
	for _, p := range posList {
		pos.Insert(p, struct{}{})
	}
	if *negatives != "" {
		rep.Negatives = evalSet{Source: *negatives, Entries: len(negList)}
		for _, addr := range drawFromEach(negList, rng) {
			if _, ok := pos.Lookup(addr); ok {
				rep.Negatives.Positive++
				continue
			}
			if err := score(&rep.Negatives, "negative", addr, *unlistedNeg); err != nil {
				return err
			}
		}
	} else {
		rep.Negatives = evalSet{Source: fmt.Sprintf("%d random routable IPv4 addresses (seed %d)", *random, *seed)}
		announced := a.cfg.Enrich.GeoIP.ASN != ""
		if announced {
			rep.Negatives.Source = fmt.Sprintf("%d random announced IPv4 addresses (seed %d)", *random, *seed)
		}
		for draws := 0; rep.Negatives.Scored < *random; draws++ {
			if draws > *random*maxDraws {
				return fmt.Errorf("random negatives: found only %d of %d eligible addresses in %d draws", rep.Negatives.Scored, *random, draws)
			}
			addr := netip.AddrFrom4(randomAddr4(rng))
			if reservedAddr(addr) {
				continue
			}
			if announced {
				if _, ok := a.enricher.ASN(addr); !ok {
					continue
				}
			}
			if _, ok := pos.Lookup(addr); ok {
				rep.Negatives.Positive++
				continue
			}
			if err := score(&rep.Negatives, "negative", addr, *unlistedNeg); err != nil {
				return err
			}
		}
	}

	ev := reputation.Evaluate(rep.Positives.scores, rep.Negatives.scores)
	rep.AUC, rep.TPRAt1, rep.TPRAt01 = jsonFloat(ev.AUC), jsonFloat(ev.TPRAt1), jsonFloat(ev.TPRAt01)
	rep.Positives.finish(ev.PositiveHistogram)
	rep.Negatives.finish(ev.NegativeHistogram)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.writeText(stdout)
}

// scoreInto scores addr into set, unless it is reserved or (with
// unlistedOnly) some loaded source lists it; it reports whether it did.
func scoreInto(svc *reputation.Service, set *evalSet, addr netip.Addr, unlistedOnly bool) (reputation.Answer, bool) {
	if reservedAddr(addr) {
		set.Reserved++
		return reputation.Answer{}, false
	}
	ans := svc.Check(addr)
	if unlistedOnly && ans.IsIoC {
		set.Listed++
		return reputation.Answer{}, false
	}
	set.Scored++
	set.scores = append(set.scores, ans.Score)
	return ans, true
}

func (s *evalSet) finish(h []reputation.Bin) {
	s.Histogram = h
	sum := 0.0
	for _, v := range s.scores {
		sum += v
	}
	s.Mean = jsonFloat(sum / float64(len(s.scores)))
}

// buildWithout builds an index of the stored data without the listings and
// episodes of the named feeds, the way the sync engine builds its own.
func buildWithout(ctx context.Context, a *app, exclude []string) (*reputation.Index, error) {
	srcs, err := a.store.Sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	names := make([]string, 0, len(srcs))
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	for _, x := range exclude {
		if !slices.Contains(names, x) {
			return nil, fmt.Errorf("--exclude: no stored source %q (stored: %s)", x, strings.Join(names, ", "))
		}
	}
	defs := make(map[string]misp.Feed)
	for _, f := range a.cfg.StaticFeeds() {
		defs[f.Name] = f
	}
	var d reputation.Data
	for _, s := range srcs {
		if !slices.Contains(exclude, s.Name) {
			d.Sources = append(d.Sources, evalSourceInfo(s, defs))
		}
	}
	if err := a.store.Listings(ctx, func(l store.Listing) error {
		if !slices.Contains(exclude, l.Source) {
			d.Listings = append(d.Listings, l)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read listings: %w", err)
	}
	retention := a.cfg.History.Retention.Std()
	now := a.service.Index().BuiltAt()
	if err := a.store.Episodes(ctx, now.Add(-retention), func(e store.Episode) error {
		if !slices.Contains(exclude, e.Source) {
			d.Episodes = append(d.Episodes, e)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read episodes: %w", err)
	}
	var enr reputation.Enricher = a.enricher
	return reputation.Build(d, reputation.BuildOptions{Enricher: enr, Retention: retention}), nil
}

// evalSourceInfo describes a stored source as the sync engine does: from
// its feed definition when there is one, else from the stored metadata.
func evalSourceInfo(s store.Source, defs map[string]misp.Feed) reputation.SourceInfo {
	info := reputation.SourceInfo{
		Name:        s.Name,
		Kind:        s.Kind,
		Provider:    s.Meta["provider"],
		Category:    s.Meta["category"],
		Tags:        splitList(s.Meta["tags"]),
		ConfirmedAt: s.LastSuccess,
	}
	if f, ok := defs[s.Name]; ok && s.Kind == store.KindFeed {
		info.Provider, info.Category, info.Tags = f.Provider, f.Category, f.Tags
		if f.Weight != nil {
			info.Weight = *f.Weight
		}
		info.Lifetime = f.Lifetime.Std()
	}
	return info
}

// readAddressFile reads a freetext list of addresses and ranges.
func readAddressFile(path string) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := misp.ParseFreetext(io.LimitReader(f, maxEvalFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(res.Prefixes) == 0 {
		return nil, fmt.Errorf("%s: %w", path, errNoAddresses)
	}
	return res.Prefixes, nil
}

var errNoAddresses = errors.New("no addresses or ranges in the file")

// drawFromEach returns each host address of ps as is and one address drawn
// at random from each range, so that a /16 counts as much as a /32: a
// listed range is one claim about its space, not 65,536.
func drawFromEach(ps []netip.Prefix, rng *rand.Rand) []netip.Addr {
	out := make([]netip.Addr, 0, len(ps))
	seen := make(map[netip.Addr]bool, len(ps))
	for _, p := range ps {
		a := p.Addr().Unmap()
		if bits := p.Bits(); a.Is4() && bits < 32 {
			v := a.As4()
			base := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
			x := base | uint32(rng.Uint64N(1<<(32-bits)))
			a = netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
		} else if a.Is6() && bits < 128 {
			// IPv6 ranges: the interface identifier drawn at random within
			// the range's last 64 bits is enough to leave the base address.
			b := a.As16()
			host := 128 - bits
			for i := 15; i >= 0 && host > 0; i-- {
				n := min(host, 8)
				b[i] |= byte(rng.Uint64N(1<<n)) & byte(1<<n-1)
				host -= n
			}
			a = netip.AddrFrom16(b)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func randomAddr4(rng *rand.Rand) [4]byte {
	x := rng.Uint32()
	return [4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
}

// reservedPrefixes is IPv4 and IPv6 space that no Internet client comes
// from (IANA special-purpose registries, multicast, class E): never a
// random negative, never scored as a positive.
var reservedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/127", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

func reservedAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range reservedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func (r *evalReport) writeText(w io.Writer) error {
	ex := "none"
	if len(r.Excluded) > 0 {
		ex = strings.Join(r.Excluded, ", ")
	}
	fmt.Fprintf(w, "index: %d prefixes; excluded feeds: %s\n", r.Prefixes, ex)
	for _, s := range []struct {
		name string
		set  *evalSet
	}{{"positives", &r.Positives}, {"negatives", &r.Negatives}} {
		fmt.Fprintf(w, "%s: %s: %d scored", s.name, s.set.Source, s.set.Scored)
		if s.set.Entries > 0 {
			fmt.Fprintf(w, " of %d entries", s.set.Entries)
		}
		fmt.Fprintf(w, "; skipped %d reserved, %d listed by loaded sources", s.set.Reserved, s.set.Listed)
		if s.set.Positive > 0 {
			fmt.Fprintf(w, ", %d in the positives", s.set.Positive)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "ROC AUC          %s\n", fmtMetric(r.AUC))
	fmt.Fprintf(w, "TPR at 1%% FPR    %s\n", fmtMetric(r.TPRAt1))
	fmt.Fprintf(w, "TPR at 0.1%% FPR  %s\n", fmtMetric(r.TPRAt01))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "score\tpositives\tnegatives\t")
	for i, b := range r.Positives.Histogram {
		n := 0
		if i < len(r.Negatives.Histogram) {
			n = r.Negatives.Histogram[i].Count
		}
		fmt.Fprintf(tw, "%g-%g\t%d\t%d\t\n", b.Lo, b.Hi, b.Count, n)
	}
	fmt.Fprintf(tw, "mean\t%s\t%s\t\n", fmtMetric(r.Positives.Mean), fmtMetric(r.Negatives.Mean))
	return tw.Flush()
}

func fmtMetric(f jsonFloat) string {
	if math.IsNaN(float64(f)) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", float64(f))
}
