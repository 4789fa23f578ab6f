package enrich

import (
	"fmt"
	"net"

	"github.com/oschwald/maxminddb-golang"
)

// announcedSpace walks every IPv4 network of d (an ASN or ISP database) once
// and sums, per autonomous system, the addresses the database maps to it.
// Networks without an AS number are skipped. It records the number of
// networks walked on d, which must not yet be shared.
func announcedSpace(d *database) (map[uint32]uint64, error) {
	all4 := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	nets := d.reader.NetworksWithin(all4, maxminddb.SkipAliasedNetworks)
	out := make(map[uint32]uint64)
	var rec struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
	}
	walked := 0
	for nets.Next() {
		rec.Number = 0
		n, err := nets.Network(&rec)
		if err != nil {
			return nil, fmt.Errorf("walk networks: %w", err)
		}
		ones, bits := n.Mask.Size()
		if bits != 32 {
			continue
		}
		walked++
		if rec.Number != 0 {
			out[rec.Number] += 1 << (32 - ones)
		}
	}
	if err := nets.Err(); err != nil {
		return nil, fmt.Errorf("walk networks: %w", err)
	}
	d.networks4 = walked
	return out, nil
}
