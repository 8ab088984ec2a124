package network

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// autoPools are where a network without --subnet gets its /24, in iSulad's order.
var autoPools = []netip.Prefix{
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("10.0.0.0/8"),
}

// nextFreeSubnet returns the first /24 of the pools that overlaps none of used.
func nextFreeSubnet(used []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range autoPools {
		for a := pool.Addr(); a.IsValid() && pool.Contains(a); {
			p := netip.PrefixFrom(a, 24)
			u, taken := firstOverlap(p, used)
			if !taken {
				return p, nil
			}
			if u.Bits() < 24 {
				a = lastAddr(u).Next() // past a larger used prefix at once
			} else {
				a = addN(a, 256)
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in 192.168.0.0/16, 172.16.0.0/12 and 10.0.0.0/8: %w", ErrInvalid)
}

func firstOverlap(p netip.Prefix, used []netip.Prefix) (netip.Prefix, bool) {
	for _, u := range used {
		if p.Overlaps(u) {
			return u, true
		}
	}
	return netip.Prefix{}, false
}

func addN(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := binary.BigEndian.Uint32(b[:]) + n
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// hostRoutes reads the IPv4 routes of the host (every table the kernel lists in
// /proc/net/route), except the default route: a subnet there would be unreachable or would
// shadow a network the host uses.
func hostRoutes() ([]netip.Prefix, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		dst, err1 := parseHexIP(fl[1])
		mask, err2 := parseHexIP(fl[7])
		if err1 != nil || err2 != nil {
			continue
		}
		m := mask.As4()
		bits := 0
		for v := binary.BigEndian.Uint32(m[:]); v&(1<<31) != 0; v <<= 1 {
			bits++
		}
		if bits == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(dst, bits).Masked())
	}
	return out, sc.Err()
}

// parseHexIP parses /proc/net/route's little-endian hex address.
func parseHexIP(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), nil
}
