package opts

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/isulad-go/isulad/api/types"
)

// networkNameRe is what a network's name may be (docker's rule); it also keeps the name safe
// in file names (isulacni-NAME.conflist) and in the CNI plugins' own paths.
var networkNameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`) })

// ValidateNetworkName checks a network's name.
func ValidateNetworkName(name string) error {
	switch name {
	case "none", "host", "bridge", "default":
		return newErr("network name", name, "reserved", "another name")
	}
	if !networkNameRe().MatchString(name) {
		return newErr("network name", name, "", "1 to 64 characters from [a-zA-Z0-9_.-], starting with a letter or digit")
	}
	return nil
}

// ValidateNetworkMode checks --net: none, host, container:ID or a network's name.
func ValidateNetworkMode(mode string) error {
	switch {
	case mode == "" || mode == "none" || mode == "host":
		return nil
	case strings.HasPrefix(mode, "container:"):
		if ref := strings.TrimPrefix(mode, "container:"); ref == "" || ValidateName(ref) != nil && !isHex(ref) {
			return newErr("--network", mode, "", "container:NAME or container:ID")
		}
		return nil
	case mode == "bridge" || mode == "default":
		return newErr("--network", mode, "there is no default bridge", "none, host, container:ID or a network made by network create")
	}
	if !networkNameRe().MatchString(mode) {
		return newErr("--network", mode, "", "none, host, container:ID or a network's name")
	}
	return nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return s != ""
}

// IsBridgeNetwork tells whether a --net value names a network (not none, host or container:).
func IsBridgeNetwork(mode string) bool {
	return mode != "" && mode != "none" && mode != "host" && !strings.HasPrefix(mode, "container:")
}

// ParsePort parses "PORT[/PROTO]" or a range "LOW-HIGH[/PROTO]" (1..65535; tcp or udp,
// default tcp).
func ParsePort(flag, s string) (low, high int, proto string, err error) {
	ports, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return 0, 0, "", newErr(flag, s, "unknown protocol "+strconv.Quote(proto), "tcp or udp")
	}
	low, high, err = parsePortRange(flag, s, ports)
	return low, high, proto, err
}

func parsePortRange(flag, whole, s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := parsePortNumber(flag, whole, lo)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return l, l, nil
	}
	h, err := parsePortNumber(flag, whole, hi)
	if err != nil {
		return 0, 0, err
	}
	if h < l {
		return 0, 0, newErr(flag, whole, "the range's end is below its start", "LOW-HIGH")
	}
	return l, h, nil
}

func parsePortNumber(flag, whole, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || strings.HasPrefix(s, "+") {
		return 0, newErr(flag, whole, "port "+strconv.Quote(s)+" is not a number from 1 to 65535", "[IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
	}
	return n, nil
}

// ParsePublish parses one -p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO] (ports may be ranges of
// equal length, or a host range for one container port is refused) into PortMap entries
// added to pm. An empty HOSTPORT means a free port picked at start.
func ParsePublish(pm types.PortMap, s string) error {
	const flag = "--publish"
	rest, proto, _ := strings.Cut(s, "/")
	var ip, host, ctr string
	// An IPv6 host IP is in brackets: [::1]:80:80.
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return newErr(flag, s, "unclosed [", "[IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
		}
		ip, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		host, ctr, _ = strings.Cut(rest, ":")
		if ctr == "" {
			host, ctr = "", host
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		case 3:
			ip, host, ctr = parts[0], parts[1], parts[2]
		default:
			return newErr(flag, s, "", "[IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
		}
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return newErr(flag, s, "host IP "+strconv.Quote(ip)+" is not an IP address", "[IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
		}
		if !a.Is4() {
			return newErr(flag, s, "only IPv4 host addresses are supported", "an IPv4 address such as 127.0.0.1")
		}
		ip = a.String()
	}
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return newErr(flag, s, "unknown protocol "+strconv.Quote(proto), "tcp or udp")
	}
	cl, ch, err := parsePortRange(flag, s, ctr)
	if err != nil {
		return err
	}
	hl, hh := 0, 0
	if host != "" {
		if hl, hh, err = parsePortRange(flag, s, host); err != nil {
			return err
		}
		if hh-hl != ch-cl {
			return newErr(flag, s, "the host and container port ranges differ in length", "ranges of one length, e.g. 8000-8009:80-89")
		}
	}
	for i := 0; i <= ch-cl; i++ {
		key := strconv.Itoa(cl+i) + "/" + proto
		b := types.PortBinding{HostIP: ip}
		if hl != 0 {
			b.HostPort = strconv.Itoa(hl + i)
		}
		pm[key] = append(pm[key], b)
	}
	return nil
}

// ParseExpose parses one --expose PORT[/PROTO] or range into ps.
func ParseExpose(ps types.PortSet, s string) error {
	l, h, proto, err := ParsePort("--expose", s)
	if err != nil {
		return err
	}
	for p := l; p <= h; p++ {
		ps[strconv.Itoa(p)+"/"+proto] = struct{}{}
	}
	return nil
}

// ParsePortKey splits a PortMap or PortSet key "PORT/PROTO".
func ParsePortKey(k string) (int, string, error) {
	l, h, proto, err := ParsePort("port", k)
	if err != nil {
		return 0, "", err
	}
	if l != h {
		return 0, "", newErr("port", k, "a range", "one PORT/PROTO")
	}
	return l, proto, nil
}

var hostNameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$`) })

// ValidateAddHost checks --add-host NAME:IP.
func ValidateAddHost(s string) error {
	name, ip, ok := strings.Cut(s, ":")
	if !ok || !hostNameRe().MatchString(name) {
		return newErr("--add-host", s, "", "NAME:IP")
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return newErr("--add-host", s, "not an IP address: "+strconv.Quote(ip), "NAME:IP")
	}
	return nil
}

// validateNetworking checks the networking part of a create request.
func validateNetworking(cfg *types.Config, hc *types.HostConfig) error {
	if err := ValidateNetworkMode(hc.NetworkMode); err != nil {
		return err
	}
	bridge := IsBridgeNetwork(hc.NetworkMode)
	if hc.IPv4Address != "" {
		a, err := netip.ParseAddr(hc.IPv4Address)
		if err != nil || !a.Is4() {
			return newErr("--ip", hc.IPv4Address, "", "an IPv4 address")
		}
		if !bridge {
			return invalidf("--ip %s needs --net NAME (a network made by network create)", hc.IPv4Address)
		}
	}
	if (len(hc.PortBindings) > 0 || hc.PublishAllPorts) && !bridge {
		return invalidf("publishing ports (-p, -P) needs --net NAME (a network made by network create), not --net %q", hc.NetworkMode)
	}
	for k, bs := range hc.PortBindings {
		if _, _, err := ParsePortKey(k); err != nil {
			return WithFlag(err, "--publish")
		}
		for _, b := range bs {
			if b.HostIP != "" {
				if a, err := netip.ParseAddr(b.HostIP); err != nil || !a.Is4() {
					return newErr("--publish", b.HostIP+"::"+k, "bad host IP", "an IPv4 address")
				}
			}
			if b.HostPort != "" {
				if _, err := parsePortNumber("--publish", b.HostPort+":"+k, b.HostPort); err != nil {
					return err
				}
			}
		}
	}
	for k := range cfg.ExposedPorts {
		if _, _, err := ParsePortKey(k); err != nil {
			return WithFlag(err, "--expose")
		}
	}
	for _, s := range hc.DNS {
		if _, err := netip.ParseAddr(s); err != nil {
			return newErr("--dns", s, "", "an IP address")
		}
	}
	for _, s := range hc.DNSSearch {
		if !hostNameRe().MatchString(s) && s != "." {
			return newErr("--dns-search", s, "", "a domain name")
		}
	}
	for _, s := range hc.DNSOptions {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			return newErr("--dns-opt", s, "", "an option such as ndots:2")
		}
	}
	for _, s := range hc.ExtraHosts {
		if err := ValidateAddHost(s); err != nil {
			return err
		}
	}
	return nil
}
