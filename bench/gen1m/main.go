// Command gen1m writes the synthetic feed of the load benchmark
// (bench/load.sh): a freetext list of distinct public IPv4 addresses, and a
// sample of them for the load generator to ask about. The data is made at
// run time from a fixed seed, so runs are comparable and nothing generated
// is ever committed.
//
//	go run ./bench/gen1m -n 1000000 -out /tmp/rampart-bench
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
)

func main() {
	n := flag.Int("n", 1_000_000, "how many distinct addresses the feed lists")
	sample := flag.Int("sample", 200_000, "how many of them go into the query sample")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("out", ".", "directory for synthetic-1m.txt and listed-sample.txt")
	flag.Parse()
	if err := run(*n, *sample, *seed, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen1m:", err)
		os.Exit(1)
	}
}

func run(n, sample int, seed uint64, dir string) error {
	if n <= 0 || sample < 0 || sample > n {
		return fmt.Errorf("need 0 < n and 0 <= sample <= n")
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := make(map[uint32]struct{}, n)
	addrs := make([]uint32, 0, n)
	for len(addrs) < n {
		v := rng.Uint32()
		if !public(v) {
			continue
		}
		if _, dup := seen[v]; dup {
			continue
		}
		seen[v] = struct{}{}
		addrs = append(addrs, v)
	}
	feed := fmt.Sprintf("# synthetic benchmark feed: %d distinct public IPv4 addresses, seed %d\n", n, seed)
	if err := write(filepath.Join(dir, "synthetic-1m.txt"), feed, addrs); err != nil {
		return err
	}
	rng.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	return write(filepath.Join(dir, "listed-sample.txt"), "", addrs[:sample])
}

func write(path, header string, addrs []uint32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(header)
	var b [4]byte
	buf := make([]byte, 0, 16)
	for _, v := range addrs {
		binary.BigEndian.PutUint32(b[:], v)
		buf = netip.AddrFrom4(b).AppendTo(buf[:0])
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// public reports whether v is outside the special-purpose IPv4 ranges, so
// that every synthetic listing is scored like a real one.
func public(v uint32) bool {
	a, b, c := v>>24, v>>16&0xff, v>>8&0xff
	switch {
	case a == 0, a == 10, a == 127, a >= 224:
		return false
	case a == 100 && b >= 64 && b < 128, a == 169 && b == 254, a == 172 && b >= 16 && b < 32, a == 192 && b == 168:
		return false
	case a == 192 && b == 0 && (c == 0 || c == 2), a == 198 && (b == 18 || b == 19), a == 198 && b == 51 && c == 100, a == 203 && b == 0 && c == 113:
		return false
	}
	return true
}
