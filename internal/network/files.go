package network

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// HostsFile is a container's /etc/hosts: loopback entries, then its own address with its
// hostname and name (on a network; 127.0.1.1 without one), then --add-host entries.
func HostsFile(ip, hostname, name string, extra []string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n")
	names := hostname
	if name != "" && name != hostname {
		names += " " + name
	}
	if ip == "" {
		ip = "127.0.1.1"
	}
	fmt.Fprintf(&b, "%s\t%s\n", ip, names)
	b.Write(ExtraHosts(extra))
	return b.Bytes()
}

// ExtraHosts are the /etc/hosts lines of --add-host NAME:IP entries.
func ExtraHosts(extra []string) []byte {
	var b bytes.Buffer
	for _, h := range extra {
		n, a, _ := strings.Cut(h, ":")
		fmt.Fprintf(&b, "%s\t%s\n", a, n)
	}
	return b.Bytes()
}

// ResolvConf is a container's /etc/resolv.conf. Nameservers: --dns, else the network's
// (dnsname on the gateway), else the host's without loopback ones (unreachable from another
// network namespace, as docker drops them). Search and options: the flags', else the host's;
// on a network its DNS domain comes first so that bare names of neighbours resolve.
func ResolvConf(host []byte, dns, search, options []string, networkDNS string) []byte {
	var hostNS, hostSearch, hostOpts []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				hostNS = append(hostNS, f[1])
			}
		case "search", "domain":
			hostSearch = f[1:]
		case "options":
			hostOpts = append(hostOpts, f[1:]...)
		}
	}
	ns := dns
	if len(ns) == 0 && networkDNS != "" {
		ns = []string{networkDNS}
	}
	if len(ns) == 0 {
		ns = hostNS
	}
	if len(search) == 0 {
		search = hostSearch
	}
	if len(search) == 1 && search[0] == "." {
		search = nil // --dns-search .: none
	}
	if networkDNS != "" {
		search = append([]string{DNSDomain}, search...)
	}
	if len(options) == 0 {
		options = hostOpts
	}
	var b bytes.Buffer
	for _, s := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

// ReadHostFile reads a small regular file of the host (/etc/resolv.conf, /etc/hosts)
// without blocking on a FIFO; a missing file reads as empty.
func ReadHostFile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}
