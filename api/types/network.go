package types

import "time"

// NetworkCreateRequest is what `network create` sends. Subnet and Gateway empty: the daemon
// picks the next free /24 and its first address.
type NetworkCreateRequest struct {
	Name     string            `json:"Name"`
	Driver   string            `json:"Driver"` // "bridge" (the only driver)
	Subnet   string            `json:"Subnet,omitempty"`
	Gateway  string            `json:"Gateway,omitempty"`
	Internal bool              `json:"Internal,omitempty"`
	Labels   map[string]string `json:"Labels,omitempty"`
}

// NetworkResource is one network as `network inspect` and `network ls` show it.
type NetworkResource struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    time.Time                   `json:"Created"`
	Driver     string                      `json:"Driver"`
	Subnet     string                      `json:"Subnet"`
	Gateway    string                      `json:"Gateway"`
	Internal   bool                        `json:"Internal"`
	Labels     map[string]string           `json:"Labels"`
	Bridge     string                      `json:"Bridge"`     // the Linux bridge's name
	ConfigFile string                      `json:"ConfigFile"` // the CNI conflist
	Containers map[string]EndpointResource `json:"Containers"` // by container ID
}

// EndpointResource is a container attached to a network.
type EndpointResource struct {
	Name        string `json:"Name"`
	IPv4Address string `json:"IPv4Address"` // CIDR form, as docker
	MacAddress  string `json:"MacAddress"`
}

// PortBinding is one host side of a published port (docker's nat.PortBinding).
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// PortMap maps "PORT/PROTO" to its host bindings (docker's nat.PortMap).
type PortMap map[string][]PortBinding

// PortSet is a set of "PORT/PROTO" (docker's nat.PortSet).
type PortSet map[string]struct{}

// EndpointSettings is a container's attachment to one network, as inspect shows it.
type EndpointSettings struct {
	NetworkID   string   `json:"NetworkID"`
	IPAddress   string   `json:"IPAddress"`
	IPPrefixLen int      `json:"IPPrefixLen"`
	Gateway     string   `json:"Gateway"`
	MacAddress  string   `json:"MacAddress"`
	Aliases     []string `json:"Aliases"`
}

// NetworkSettings is the live network view of a container in inspect.
type NetworkSettings struct {
	SandboxKey string                       `json:"SandboxKey"` // the network namespace's path
	IPAddress  string                       `json:"IPAddress"`
	Gateway    string                       `json:"Gateway"`
	Ports      PortMap                      `json:"Ports"`
	Networks   map[string]*EndpointSettings `json:"Networks"`
}
