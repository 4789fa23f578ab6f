package enrich

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

// MaxDatabaseBytes bounds one database file. Commercial GeoIP2 City files
// are well under 1 GiB; a larger file is refused rather than read into
// memory.
const MaxDatabaseBytes = 2 << 30

// maxCachedRecords bounds the decoded-record cache of one database. Country,
// ASN and anonymizer databases have far fewer distinct records; a City
// database beyond the bound still answers, decoding the rest per lookup.
const maxCachedRecords = 1 << 18

// ErrDatabaseType is returned when a file is a MaxMind database of another
// kind than the setting it was configured under (an ASN database given as
// the country database, say).
var ErrDatabaseType = errors.New("wrong database type")

// kind is which configured database a file is.
type kind int

const (
	kindCity kind = iota
	kindCountry
	kindASN
	kindISP
	kindAnonymous
	numKinds
)

// String returns the kind's configuration key under enrich.geoip.
func (k kind) String() string {
	switch k {
	case kindCity:
		return "city"
	case kindCountry:
		return "country"
	case kindASN:
		return "asn"
	case kindISP:
		return "isp"
	case kindAnonymous:
		return "anonymous_ip"
	}
	return "unknown"
}

// accepts reports whether a database of type dbType (its metadata's
// database_type, such as "GeoLite2-ASN") can serve as this kind.
func (k kind) accepts(dbType string) bool {
	switch k {
	case kindCity:
		return strings.Contains(dbType, "City") || strings.Contains(dbType, "Enterprise")
	case kindCountry:
		return strings.Contains(dbType, "Country") || strings.Contains(dbType, "City") ||
			strings.Contains(dbType, "Enterprise")
	case kindASN:
		return strings.Contains(dbType, "ASN") || strings.Contains(dbType, "ISP")
	case kindISP:
		return strings.Contains(dbType, "ISP")
	case kindAnonymous:
		return strings.Contains(dbType, "Anonymous-IP")
	}
	return false
}

// paths returns the configured file of each kind ("" when unset).
func paths(cfg config.GeoIP) [numKinds]string {
	return [numKinds]string{
		kindCity:      cfg.City,
		kindCountry:   cfg.Country,
		kindASN:       cfg.ASN,
		kindISP:       cfg.ISP,
		kindAnonymous: cfg.AnonymousIP,
	}
}

// record is one decoded database record, reduced to what Metadata reports.
// Records are immutable once cached.
type record struct {
	Number      uint32
	ASN         string // "AS15169"
	Org         string
	Country     string
	City        string
	Anonymous   bool
	VPN         bool
	Tor         bool
	Hosting     bool
	PublicProxy bool
}

// The raw shapes decoded from each kind of database. Fields that Metadata
// does not report are left out, so the decoder skips them (localized names
// in particular) without allocating.
type (
	isoCode struct {
		ISOCode string `maxminddb:"iso_code"`
	}
	cityRaw struct {
		City struct {
			Names struct {
				En string `maxminddb:"en"`
			} `maxminddb:"names"`
		} `maxminddb:"city"`
		Country isoCode `maxminddb:"country"`
	}
	countryRaw struct {
		Country isoCode `maxminddb:"country"`
	}
	asnRaw struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
		Org    string `maxminddb:"autonomous_system_organization"`
	}
	ispRaw struct {
		Number       uint32 `maxminddb:"autonomous_system_number"`
		ASOrg        string `maxminddb:"autonomous_system_organization"`
		ISP          string `maxminddb:"isp"`
		Organization string `maxminddb:"organization"`
	}
	anonymousRaw struct {
		Anonymous   bool `maxminddb:"is_anonymous"`
		VPN         bool `maxminddb:"is_anonymous_vpn"`
		Hosting     bool `maxminddb:"is_hosting_provider"`
		PublicProxy bool `maxminddb:"is_public_proxy"`
		Tor         bool `maxminddb:"is_tor_exit_node"`
	}
)

func asnText(n uint32) string {
	if n == 0 {
		return ""
	}
	return "AS" + strconv.FormatUint(uint64(n), 10)
}

// database is one loaded file.
type database struct {
	kind   kind
	path   string
	stamp  os.FileInfo // of the file as it was read
	reader *maxminddb.Reader
	ipv6   bool
	// cache maps a record's data offset to its *record.
	cache     sync.Map
	cached    atomic.Int64
	errors    atomic.Uint64 // lookups that failed on a damaged database
	loadedAt  time.Time
	networks4 int // IPv4 networks walked for announced space (ASN source only)
	// flat answers IPv4 lookups without walking the tree (flat4.go); nil
	// when the database could not be flattened, and then the tree answers.
	flat *flat4
}

// loadDatabase reads path into memory and opens it as kind k.
func loadDatabase(k kind, path string, now time.Time) (*database, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > MaxDatabaseBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, int64(MaxDatabaseBytes))
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	r, err := maxminddb.FromBytes(data)
	if err != nil {
		return nil, err
	}
	if !k.accepts(r.Metadata.DatabaseType) {
		return nil, fmt.Errorf("%w: %s is a %q database", ErrDatabaseType, path, r.Metadata.DatabaseType)
	}
	d := &database{
		kind:     k,
		path:     path,
		stamp:    st,
		reader:   r,
		ipv6:     r.Metadata.IPVersion == 6,
		loadedAt: now,
	}
	// A walk that fails (a damaged database) leaves the tree to answer,
	// which counts its lookup errors.
	d.flat, _ = buildFlat4(d)
	return d, nil
}

// lookup returns the record for ip, or nil when the database has none.
// It must not be called with an IPv6 address on an IPv4-only database.
func (d *database) lookup(ip net.IP) *record {
	off, err := d.reader.LookupOffset(ip)
	if err != nil {
		d.errors.Add(1)
		return nil
	}
	if off == maxminddb.NotFound {
		return nil
	}
	if v, ok := d.cache.Load(off); ok {
		return v.(*record)
	}
	rec, err := d.decode(off)
	if err != nil {
		d.errors.Add(1)
		return nil
	}
	// The bound is approximate under concurrency, which is all it needs.
	if d.cached.Load() < maxCachedRecords {
		if v, loaded := d.cache.LoadOrStore(off, rec); loaded {
			return v.(*record)
		}
		d.cached.Add(1)
	}
	return rec
}

// decode reads the record at off in the shape of the database's kind.
func (d *database) decode(off uintptr) (*record, error) {
	r := d.reader
	switch d.kind {
	case kindCity:
		var raw cityRaw
		if err := r.Decode(off, &raw); err != nil {
			return nil, err
		}
		return &record{Country: raw.Country.ISOCode, City: raw.City.Names.En}, nil
	case kindCountry:
		var raw countryRaw
		if err := r.Decode(off, &raw); err != nil {
			return nil, err
		}
		return &record{Country: raw.Country.ISOCode}, nil
	case kindASN:
		var raw asnRaw
		if err := r.Decode(off, &raw); err != nil {
			return nil, err
		}
		return &record{Number: raw.Number, ASN: asnText(raw.Number), Org: raw.Org}, nil
	case kindISP:
		var raw ispRaw
		if err := r.Decode(off, &raw); err != nil {
			return nil, err
		}
		org := raw.ASOrg
		if org == "" {
			org = raw.ISP
		}
		if org == "" {
			org = raw.Organization
		}
		return &record{Number: raw.Number, ASN: asnText(raw.Number), Org: org}, nil
	case kindAnonymous:
		var raw anonymousRaw
		if err := r.Decode(off, &raw); err != nil {
			return nil, err
		}
		return &record{
			Anonymous:   raw.Anonymous,
			VPN:         raw.VPN,
			Tor:         raw.Tor,
			Hosting:     raw.Hosting,
			PublicProxy: raw.PublicProxy,
		}, nil
	}
	return nil, fmt.Errorf("decode: unknown database kind %d", d.kind)
}

// snapshot is the set of databases in force. It is immutable: a reload
// builds a new one and swaps it in.
type snapshot struct {
	dbs [numKinds]*database
	// asnSource is the database that answers ASN and Announced: the ASN
	// database, else the ISP database; -1 when neither is configured.
	asnSource kind
	announced map[uint32]uint64
}

// find returns the record of kind k for addr (already unmapped), if any.
func (s *snapshot) find(k kind, addr netip.Addr, ip net.IP) *record {
	d := s.dbs[k]
	if d == nil || (!addr.Is4() && !d.ipv6) {
		return nil
	}
	if d.flat != nil && addr.Is4() {
		return d.flat.lookup(v4(addr))
	}
	return d.lookup(ip)
}

// netIP returns addr as a net.IP backed by buf, so that building it does not
// allocate.
func netIP(addr netip.Addr, buf *[16]byte) net.IP {
	if addr.Is4() {
		a := addr.As4()
		copy(buf[:4], a[:])
		return buf[:4]
	}
	*buf = addr.As16()
	return buf[:]
}

// Enricher answers enrichment queries from the configured databases and
// keeps them current. It is safe for concurrent use; its methods never block
// on I/O.
type Enricher struct {
	logger  *slog.Logger
	now     func() time.Time
	paths   [numKinds]string
	source  kind
	snap    atomic.Pointer[snapshot]
	watcher watcher

	mu     sync.Mutex // guards failed
	failed [numKinds]failure

	// memo carries one address's records from the first of a query's
	// questions (ASN, Country, Metadata) to the others, so that each
	// database's tree is walked once per query, not once per question.
	memo memo
}

var _ reputation.Enricher = (*Enricher)(nil)

// Options tune an Enricher beyond its configuration; the zero value gives
// the defaults.
type Options struct {
	// Poll is how often files are checked for replacement when no change
	// notification arrives (a fallback for file systems without inotify).
	// Default one minute.
	Poll time.Duration
	// Settle is how long a file must be quiet after a change notification
	// before it is reloaded, so a file written in place is read once
	// complete. Default 250 ms.
	Settle time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Open loads the databases cfg names and starts watching them for
// replacement. Each file is optional; with none configured the Enricher is
// valid and every answer is empty. A configured file that cannot be loaded
// is an error naming its setting and path. Close stops the watcher.
func Open(cfg config.GeoIP, logger *slog.Logger) (*Enricher, error) {
	return OpenWith(cfg, logger, Options{})
}

// OpenWith is Open with explicit Options.
func OpenWith(cfg config.GeoIP, logger *slog.Logger, opts Options) (*Enricher, error) {
	if opts.Poll <= 0 {
		opts.Poll = time.Minute
	}
	if opts.Settle <= 0 {
		opts.Settle = 250 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Enricher{
		logger: logger.With("component", "enrich"),
		now:    opts.Now,
		paths:  paths(cfg),
		source: -1,
	}
	switch {
	case e.paths[kindASN] != "":
		e.source = kindASN
	case e.paths[kindISP] != "":
		e.source = kindISP
	}
	s := &snapshot{asnSource: e.source}
	for k, path := range e.paths {
		if path == "" {
			continue
		}
		d, err := loadDatabase(kind(k), path, e.now())
		if err != nil {
			return nil, fmt.Errorf("open enrich.geoip.%s: %w", kind(k), err)
		}
		s.dbs[k] = d
	}
	if e.source >= 0 {
		announced, err := announcedSpace(s.dbs[e.source])
		if err != nil {
			return nil, fmt.Errorf("open enrich.geoip.%s: %w", e.source, err)
		}
		s.announced = announced
	}
	e.snap.Store(s)
	e.startWatch(opts.Poll, opts.Settle)
	return e, nil
}

// Metadata returns what the databases know of addr's network: ASN and
// organisation (from the ASN database, else the ISP database), country
// (from the country database, else the city database), city name in
// English, and the anonymizer flags. Unknown fields are empty.
func (e *Enricher) Metadata(addr netip.Addr) reputation.Metadata {
	var m reputation.Metadata
	addr = addr.Unmap()
	if !addr.IsValid() {
		return m
	}
	recs := &e.resolve(e.snap.Load(), addr).recs
	if r := recs[kindASN]; r != nil {
		m.ASN, m.Org = r.ASN, r.Org
	}
	if r := recs[kindISP]; r != nil {
		if m.ASN == "" {
			m.ASN = r.ASN
		}
		if m.Org == "" {
			m.Org = r.Org
		}
	}
	if r := recs[kindCountry]; r != nil {
		m.Country = r.Country
	}
	if r := recs[kindCity]; r != nil {
		if m.Country == "" {
			m.Country = r.Country
		}
		m.City = r.City
	}
	if r := recs[kindAnonymous]; r != nil {
		m.Anonymous, m.VPN, m.Tor, m.Hosting, m.PublicProxy = r.Anonymous, r.VPN, r.Tor, r.Hosting, r.PublicProxy
	}
	return m
}

// ASN returns the autonomous system that announces addr, from the ASN
// database, else the ISP database.
func (e *Enricher) ASN(addr netip.Addr) (uint32, bool) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return 0, false
	}
	s := e.snap.Load()
	if s.asnSource < 0 {
		return 0, false
	}
	r := e.resolve(s, addr).recs[s.asnSource]
	if r == nil || r.Number == 0 {
		return 0, false
	}
	return r.Number, true
}

// Announced returns how many IPv4 addresses the ASN database maps to asn
// (0 if unknown). IPv6 space is not counted: the reputation model uses this
// as the denominator of a listed-address density, and IPv6 allocations are
// too large for such a density to mean anything.
func (e *Enricher) Announced(asn uint32) uint64 {
	return e.snap.Load().announced[asn]
}

// DatabaseStatus describes one configured database.
type DatabaseStatus struct {
	Setting      string // "asn", "city", ...
	Path         string
	Loaded       bool
	DatabaseType string
	BuildEpoch   time.Time // when the database was built, from its metadata
	LoadedAt     time.Time
	// Networks4 is the number of IPv4 networks counted for announced space
	// (only for the database that answers ASN).
	Networks4 int
	// LookupErrors counts lookups that failed on a damaged database.
	LookupErrors uint64
	// ReloadError is the last failed reload of a replacement file, if that
	// file is still in place.
	ReloadError error
}

// Status describes every configured database, for health pages and logs.
func (e *Enricher) Status() []DatabaseStatus {
	s := e.snap.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []DatabaseStatus
	for k, path := range e.paths {
		if path == "" {
			continue
		}
		st := DatabaseStatus{Setting: kind(k).String(), Path: path, ReloadError: e.failed[k].err}
		if d := s.dbs[k]; d != nil {
			st.Loaded = true
			st.DatabaseType = d.reader.Metadata.DatabaseType
			st.BuildEpoch = time.Unix(int64(d.reader.Metadata.BuildEpoch), 0).UTC()
			st.LoadedAt = d.loadedAt
			st.Networks4 = d.networks4
			st.LookupErrors = d.errors.Load()
		}
		out = append(out, st)
	}
	return out
}
