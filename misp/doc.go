// Package misp is Rampart's side of MISP's world: feed definitions with
// MISP's Feed field names (Feed, LoadFeedMetadata, DefaultCatalog), the
// three feed formats MISP reads (ParseFreetext, ParseCSV, ParseEvent and
// ParseManifest for the misp format), fetching them (Fetcher), MISP's
// warninglists and its REST client.
//
// A sync calls (*Fetcher).Fetch with the feed's FetchState from the last good
// pull. Fetch reads a local path, a file:// URL or an http(s) URL
// (conditional with ETag / If-Modified-Since, gzip, a per-request timeout, a
// size limit, the feed's extra headers), skips parsing when the content hash
// is unchanged, and parses by source_format. Any failure returns an error and
// no Result, so the caller keeps the last good data in force.
//
// # Parsing rules and where they differ from MISP
//
// The parsers follow MISP's freetext and csv import (ComplexTypeTool and the
// feed importer): tokens split on whitespace, ",", ";", "<" and ">", trimmed
// and refanged; addresses, ranges, ip:port, ip|port and domain|ip recognised;
// other indicator types kept in Result.Others. Only addresses and ranges ever
// reach Result.Prefixes, and so the /ip index. On purpose, Rampart differs
// from MISP where MISP's behaviour would list things no one meant to list:
//
//   - A line whose first non-blank character is "#" is a comment, and a token
//     starting with "#" (or the part of a token from a "#", unless it is a
//     URL) starts an inline comment. MISP types every token of such lines,
//     and blocklist headers (FireHOL, IPsum, abuse.ch) hold URLs and prose.
//   - Ranges shorter than /8 (IPv4) or /16 (IPv6), including 0.0.0.0/0, are
//     counted as malformed and skipped (MinBitsIPv4, MinBitsIPv6): a feed
//     must never list the whole Internet or a large part of it. FireHOL's
//     level 1 list carries the bogon 224.0.0.0/3, which is skipped so.
//   - The unspecified addresses 0.0.0.0 and :: are dropped (hosts-file style
//     lists use 0.0.0.0 as a sink); ranges such as 0.0.0.0/8 are kept.
//   - Ranges are masked ("10.0.0.5/8" is 10.0.0.0/8), IPv4-mapped IPv6
//     addresses become IPv4, and addresses with a zone (fe80::1%eth0) or
//     leading zeros (010.1.1.1, read as octal by some tools) are malformed.
//   - Overlong lines (MaxLineBytes) are counted as malformed and skipped, and
//     Result.Others is capped at MaxOthers.
//
// In the misp format, every attribute of a usable address type counts, in
// the event and in its objects, whatever its to_ids flag (a feed is a list
// someone chose to publish); deleted attributes and attributes of deleted
// objects are left out.
//
// Definitions read from a MISP server (Origin "misp") may not name local
// files: a MISP administrator must not be able to make Rampart read files of
// its own host.
package misp
