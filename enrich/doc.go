// Package enrich tells what is known of an address's network: its
// autonomous system and organisation, country and city, and whether it is an
// anonymizer (VPN, Tor exit, public proxy, hosting provider), from
// MaxMind-format databases (GeoIP2 / GeoLite2 City, Country, ASN, ISP and
// Anonymous-IP, or any database in the same layout). It also reports how
// much IPv4 space each autonomous system announces, which the reputation
// model uses to turn a count of listed addresses into a density, and it
// adapts MISP warninglists to the reputation package's Warner interface.
//
// Open loads the configured files (each is optional; with none, every answer
// is empty) and watches them: a file replaced on disk, as geoipupdate does
// by writing a temporary file and renaming it over the old one, is loaded in
// the background and swapped in atomically, so queries never wait for a
// reload. A replacement that cannot be loaded leaves the previous database
// in force and is logged.
//
// Databases are read into memory rather than memory-mapped. A mapped file
// that is truncated or rewritten in place faults the process (SIGBUS), and a
// mapping cannot be unmapped while a query may still be reading it; with a
// private copy, a replaced database is simply dropped and the garbage
// collector frees it once the last query holding the old snapshot returns.
// The cost is resident memory equal to the files' size, twice that for one
// database while it is being reloaded.
//
// Lookups are meant for the hot path: decoded records are cached by their
// offset in the database (MaxMind databases share one record among many
// networks), so a query allocates nothing once its records have been seen.
package enrich
