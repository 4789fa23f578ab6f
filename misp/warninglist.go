package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gaissmai/bart"
)

// MaxWarninglistBytes bounds one warninglist file. The largest CIDR list
// MISP ships (public DNS resolvers) is a few MiB; anything far beyond that is
// not a warninglist.
const MaxWarninglistBytes = 64 << 20

// WarninglistTypeCIDR is the only warninglist type Rampart uses: lists of
// addresses and CIDR ranges. String, substring, hostname and regex lists are
// about other attribute types and are skipped.
const WarninglistTypeCIDR = "cidr"

// ErrWarninglist is wrapped by every error about a malformed warninglist file.
var ErrWarninglist = errors.New("malformed warninglist")

// ListInfo describes one warninglist file as loaded.
type ListInfo struct {
	Name    string
	Path    string
	Type    string
	Version string
	// MatchingAttributes are the MISP attribute types the list applies to.
	// Rampart applies every CIDR list to client addresses whatever they say,
	// because a client address is both a source and a destination in MISP's
	// terms.
	MatchingAttributes []string
	// Entries is the number of addresses and ranges taken from the list.
	Entries int
	// Malformed counts list entries that are neither an address nor a CIDR
	// range; they are skipped.
	Malformed int
	// Skipped is true when the list is not of type cidr and was not used.
	Skipped bool
}

// Warninglists matches addresses and ranges against MISP CIDR warninglists:
// known-benign infrastructure such as public DNS resolvers, cloud and CDN
// ranges, research scanners and reserved space. It is immutable after
// LoadWarninglists and safe for concurrent use.
//
// Matching follows MISP's Warninglist model for cidr lists: an address
// matches a list when it lies in one of the list's ranges, and a range
// matches only when it lies wholly inside one of them. For each list that
// matches, the broadest matching range is reported, as MISP does (it tries
// the containing ranges from /0 down).
type Warninglists struct {
	lists []ListInfo
	// table maps every distinct listed range to the precomputed warnings
	// of every range that contains it, so a lookup is one longest-prefix
	// match and no allocation: the warnings of the most specific listed
	// range containing a prefix are exactly the warnings of the prefix.
	table  bart.Table[[]Warning]
	ranges int
}

// Warning is a warninglist hit: the list's name and the range that matched
// (a bare address for a listed single address). It has the shape and JSON
// names of reputation.Warning; package misp cannot name that type because
// reputation imports config, which imports misp.
type Warning struct {
	List  string `json:"list"`
	Match string `json:"match"`
}

// warninglistFile is the JSON shape of a MISP warninglist.
type warninglistFile struct {
	Name               string          `json:"name"`
	Version            json.RawMessage `json:"version"`
	Description        string          `json:"description"`
	Type               string          `json:"type"`
	List               []string        `json:"list"`
	MatchingAttributes []string        `json:"matching_attributes"`
}

// LoadWarninglists loads MISP warninglist JSON files. Each path is a file or
// a directory, which is searched recursively for *.json files (so both a
// flat directory and a checkout of MISP/misp-warninglists, with its
// lists/<name>/list.json layout, work). Lists whose type is not cidr are
// skipped and reported in Lists. A file that cannot be read or is not a
// warninglist fails the whole load with an error naming it; a malformed
// entry inside a list is counted and skipped. No paths give an empty, valid
// set.
func LoadWarninglists(paths ...string) (*Warninglists, error) {
	var files []string
	for _, p := range paths {
		found, err := warninglistFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, found...)
	}

	w := &Warninglists{}
	// byPrefix collects, for each distinct range, the lists that name it.
	byPrefix := make(map[netip.Prefix]*listedRange)
	for _, path := range files {
		info, prefixes, err := readWarninglist(path)
		if err != nil {
			return nil, err
		}
		idx := len(w.lists)
		w.lists = append(w.lists, info)
		for _, p := range prefixes {
			r := byPrefix[p]
			if r == nil {
				r = &listedRange{}
				byPrefix[p] = r
			}
			if len(r.ids) > 0 && r.ids[len(r.ids)-1] == idx {
				continue // the same range twice in one list
			}
			r.ids = append(r.ids, idx)
		}
	}
	w.build(byPrefix)
	return w, nil
}

// warninglistFiles expands one configured path into the files to read.
func warninglistFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load warninglists: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.EqualFold(filepath.Ext(p), ".json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load warninglists from %s: %w", path, err)
	}
	slices.Sort(files)
	return files, nil
}

// readWarninglist reads and parses one file; prefixes is empty for a
// skipped list.
func readWarninglist(path string) (ListInfo, []netip.Prefix, error) {
	info := ListInfo{Path: path}
	f, err := os.Open(path)
	if err != nil {
		return info, nil, fmt.Errorf("load warninglist: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxWarninglistBytes+1))
	if err != nil {
		return info, nil, fmt.Errorf("load warninglist %s: %w", path, err)
	}
	if len(data) > MaxWarninglistBytes {
		return info, nil, fmt.Errorf("load warninglist %s: %w: larger than %d bytes", path, ErrWarninglist, MaxWarninglistBytes)
	}
	var raw warninglistFile
	if err := json.Unmarshal(data, &raw); err != nil {
		return info, nil, fmt.Errorf("load warninglist %s: %w: %w", path, ErrWarninglist, err)
	}
	switch {
	case strings.TrimSpace(raw.Name) == "":
		return info, nil, fmt.Errorf("load warninglist %s: %w: no name", path, ErrWarninglist)
	case raw.Type == "":
		return info, nil, fmt.Errorf("load warninglist %s: %w: no type", path, ErrWarninglist)
	case raw.List == nil:
		return info, nil, fmt.Errorf("load warninglist %s: %w: no list", path, ErrWarninglist)
	}
	info.Name = strings.TrimSpace(raw.Name)
	info.Type = raw.Type
	info.Version = string(bytes.Trim(raw.Version, `"`))
	info.MatchingAttributes = raw.MatchingAttributes
	if raw.Type != WarninglistTypeCIDR {
		info.Skipped = true
		return info, nil, nil
	}
	prefixes := make([]netip.Prefix, 0, len(raw.List))
	for _, v := range raw.List {
		p, ok := parseListEntry(v)
		if !ok {
			info.Malformed++
			continue
		}
		prefixes = append(prefixes, p)
	}
	info.Entries = len(prefixes)
	return info, prefixes, nil
}

// parseListEntry parses an address or CIDR range from a cidr warninglist.
// Ranges with host bits set are masked; IPv4-mapped IPv6 forms are taken
// as IPv4, the form queries arrive in.
func parseListEntry(v string) (netip.Prefix, bool) {
	v = strings.TrimSpace(v)
	var p netip.Prefix
	if strings.Contains(v, "/") {
		var err error
		if p, err = netip.ParsePrefix(v); err != nil {
			return netip.Prefix{}, false
		}
	} else {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return canonical(p)
}

// canonical masks p and turns an IPv4-mapped IPv6 range into IPv4.
func canonical(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p.Masked(), true
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// listedRange is one distinct range while the lists are being built.
type listedRange struct {
	ids  []int  // indexes of the lists that name the range
	text string // the range as reported in a Warning, once computed
}

func (r *listedRange) match(p netip.Prefix) string {
	if r.text == "" {
		if p.IsSingleIP() {
			r.text = p.Addr().String()
		} else {
			r.text = p.String()
		}
	}
	return r.text
}

// build fills the lookup table from the collected ranges. It sweeps the
// ranges in CIDR order with a stack of the ranges enclosing the current one,
// so each range's warnings are its parent's plus those of the lists that
// name it and no enclosing range; a range that adds nothing shares its
// parent's slice.
func (w *Warninglists) build(byPrefix map[netip.Prefix]*listedRange) {
	prefixes := make([]netip.Prefix, 0, len(byPrefix))
	for p := range byPrefix {
		prefixes = append(prefixes, p)
	}
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	type frame struct {
		p   netip.Prefix
		ids []int // lists with a warning in ws, in no order
		ws  []Warning
	}
	var stack []frame
	for _, p := range prefixes {
		for len(stack) > 0 {
			top := stack[len(stack)-1].p
			if top.Bits() <= p.Bits() && top.Contains(p.Addr()) {
				break
			}
			stack = stack[:len(stack)-1]
		}
		var parent frame
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		r := byPrefix[p]
		cur := frame{p: p, ids: parent.ids, ws: parent.ws}
		for _, id := range r.ids {
			if slices.Contains(cur.ids, id) {
				continue // an enclosing range of the same list is broader
			}
			if len(cur.ids) == len(parent.ids) { // first new list: copy before appending
				cur.ids = slices.Clone(parent.ids)
				cur.ws = slices.Clone(parent.ws)
			}
			cur.ids = append(cur.ids, id)
			cur.ws = append(cur.ws, Warning{List: w.lists[id].Name, Match: r.match(p)})
		}
		if len(cur.ids) != len(parent.ids) {
			slices.SortFunc(cur.ws, func(a, b Warning) int {
				if c := strings.Compare(a.List, b.List); c != 0 {
					return c
				}
				return strings.Compare(a.Match, b.Match)
			})
			cur.ids, cur.ws = slices.Clip(cur.ids), slices.Clip(cur.ws)
		}
		stack = append(stack, cur)
		w.table.Insert(p, cur.ws)
	}
	w.ranges = len(byPrefix)
}

// Warnings returns the warninglist hits for p: one per list, with the
// broadest of the list's ranges that contains p. A single address is a /32
// or /128. It returns nil, without allocating, when no list matches. The
// returned slice is shared by every caller and must not be modified.
func (w *Warninglists) Warnings(p netip.Prefix) []Warning {
	if w == nil {
		return nil
	}
	p, ok := canonical(p)
	if !ok {
		return nil
	}
	ws, _ := w.table.LookupPrefix(p)
	return ws
}

// All yields every listed range with its precomputed warnings, in no
// particular order. It lets a caller build its own lookup table (package
// enrich converts the warnings to reputation.Warning once this way).
func (w *Warninglists) All() iter.Seq2[netip.Prefix, []Warning] {
	return func(yield func(netip.Prefix, []Warning) bool) {
		if w == nil {
			return
		}
		for p, ws := range w.table.All() {
			if !yield(p, ws) {
				return
			}
		}
	}
}

// Lists describes every loaded file, used or skipped, in load order.
func (w *Warninglists) Lists() []ListInfo {
	if w == nil {
		return nil
	}
	return slices.Clone(w.lists)
}

// Len returns the number of distinct ranges loaded from all CIDR lists.
func (w *Warninglists) Len() int {
	if w == nil {
		return 0
	}
	return w.ranges
}
