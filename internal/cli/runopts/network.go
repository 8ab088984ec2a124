package runopts

import (
	"github.com/spf13/pflag"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/opts"
)

// netOptions are the networking flags of create and run (besides --net and -h).
type netOptions struct {
	ip                     string
	publish, expose        []string
	publishAll             bool
	dns, dnsSearch, dnsOpt []string
	addHost                []string
}

func (o *netOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ip, "ip", "", "the container's IPv4 address on its network")
	stringArrayVarP(fs, &o.publish, "publish", "p", "publish a port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], ranges too")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "publish every exposed port on a free host port")
	stringArrayVarP(fs, &o.expose, "expose", "", "expose a port or a range: PORT[-PORT][/tcp|udp]")
	stringArrayVarP(fs, &o.dns, "dns", "", "a nameserver for /etc/resolv.conf")
	stringArrayVarP(fs, &o.dnsSearch, "dns-search", "", "a search domain for /etc/resolv.conf")
	stringArrayVarP(fs, &o.dnsOpt, "dns-opt", "", "an option for /etc/resolv.conf")
	stringArrayVarP(fs, &o.addHost, "add-host", "", "add NAME:IP to /etc/hosts")
}

// apply parses the flags into the request; every value is checked again by ValidateCreate.
func (o *netOptions) apply(c *types.Config, hc *types.HostConfig) error {
	hc.IPv4Address = o.ip
	if len(o.publish) > 0 {
		hc.PortBindings = types.PortMap{}
		for _, p := range o.publish {
			if err := opts.ParsePublish(hc.PortBindings, p); err != nil {
				return err
			}
		}
	}
	if len(o.expose) > 0 || len(o.publish) > 0 {
		c.ExposedPorts = types.PortSet{}
		for _, e := range o.expose {
			if err := opts.ParseExpose(c.ExposedPorts, e); err != nil {
				return err
			}
		}
		for k := range hc.PortBindings {
			c.ExposedPorts[k] = struct{}{} // a published port is exposed, as docker
		}
	}
	hc.PublishAllPorts = o.publishAll
	hc.DNS, hc.DNSSearch, hc.DNSOptions, hc.ExtraHosts = o.dns, o.dnsSearch, o.dnsOpt, o.addHost
	return nil
}
