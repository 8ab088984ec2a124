package cri

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/image/reference"
)

// Annotations of this engine that no other CRI runtime has.
const (
	AnnotationSystemContainer   = "io.isulad.system-container"
	AnnotationHostChannelPrefix = "io.isulad.host-channel."
	// AnnotationContainerPrefix scopes a pod annotation to one container: the kubelet passes a
	// pod's annotations only to RunPodSandbox, so io.isulad.container.<name>.system-container
	// and io.isulad.container.<name>.host-channel.<channel> on the pod apply to its container
	// <name> (unless that container's own annotations set the same key).
	AnnotationContainerPrefix = "io.isulad.container."
)

// labelMeta is the engine label that makes a container the CRI's: it holds what the CRI must
// answer about the container and the engine does not keep (JSON of containerMeta).
const labelMeta = "io.isulad.cri.meta"

// containerMeta is the CRI's view of one of its containers, kept in the engine's labels.
type containerMeta struct {
	SandboxID string `json:"sandboxId"`
	Name      string `json:"name"`
	Attempt   uint32 `json:"attempt"`
	Image     string `json:"image"`   // as the kubelet asked
	ImageID   string `json:"imageId"` // as it resolved
	// UserImage is the image as the pod spec names it (ImageSpec.user_specified_image), when
	// the kubelet gives it: it asks for the image by the ID PullImage answered.
	UserImage string `json:"userImage,omitempty"`
	// ImageMounts are the container's image volumes, as the kubelet gave them.
	ImageMounts      []metaImageMount  `json:"imageMounts,omitempty"`
	Annotations      map[string]string `json:"annotations,omitempty"`
	Labels           []string          `json:"labels,omitempty"` // which engine labels are the CRI config's
	HostChannelBytes int64             `json:"hostChannelBytes,omitempty"`
}

// shownImage is the image as a user named it: the pod spec's, else the reference given.
func (m containerMeta) shownImage() string {
	if m.UserImage != "" {
		return m.UserImage
	}
	return m.Image
}

// imageSpec is the container's image as the CRI reports it.
func (m containerMeta) imageSpec() *runtimeapi.ImageSpec {
	return &runtimeapi.ImageSpec{Image: m.Image, UserSpecifiedImage: m.UserImage}
}

func metaOf(c ContainerState) (containerMeta, bool) {
	var m containerMeta
	v, ok := c.Labels[labelMeta]
	if !ok || json.Unmarshal([]byte(v), &m) != nil {
		return m, false
	}
	return m, true
}

// criLabels are the labels the kubelet gave the container.
func criLabels(c ContainerState, m containerMeta) map[string]string {
	out := map[string]string{}
	for _, k := range m.Labels {
		if v, ok := c.Labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

// podContainers lists the engine's containers of one pod.
func (s *Service) podContainers(sandboxID string) []ContainerState {
	var out []ContainerState
	for _, c := range s.engine.Containers(labelMeta) {
		if m, ok := metaOf(c); ok && m.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}

func (s *Service) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	sb, err := s.pods.get(r.PodSandboxId)
	if err != nil {
		return nil, gerr(err)
	}
	unlock := s.pods.lock(sb.ID)
	defer unlock()
	if sb, err = s.pods.get(sb.ID); err != nil {
		return nil, gerr(err)
	}
	if !sb.ready() {
		return nil, gerr(errdefs.Errorf(errdefs.ErrConflict, "pod sandbox %s is not ready (stopped, or its namespaces are gone)", sb.ID))
	}
	cc, err := s.containerConfig(ctx, sb, r.GetConfig())
	if err != nil {
		return nil, gerr(err)
	}
	if len(cc.HostChannels) > 0 {
		md := r.GetConfig().GetMetadata()
		for _, old := range s.channelHolders(sb.ID, md.GetName(), md.GetAttempt()) {
			if err := s.engine.RemoveContainer(ctx, old.ID); err != nil && !errdefs.IsNotFound(err) {
				return nil, gerr(fmt.Errorf("container %q attempt %d: removing the exited attempt %s that holds its host channels: %w",
					md.GetName(), md.GetAttempt(), old.ID, err))
			}
			s.log.Info("exited attempt removed: its host channels go to the new attempt", "pod", sb.fullName(),
				"container", md.GetName(), "old", old.ID, "attempt", md.GetAttempt())
		}
	}
	id, warnings, err := s.engine.CreateContainer(ctx, cc)
	if err != nil {
		return nil, gerr(err)
	}
	for _, w := range warnings {
		s.log.Warn(w, "id", id)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// channelHolders are the earlier attempts of the pod's container name that have host channels
// and no longer run. A channel's host path belongs to one container record, but the kubelet
// restarts a container as a new one (attempt+1) and keeps the exited one for a while (for
// `kubectl logs --previous` and its restart count): the new attempt, with the same annotations
// and so the same host paths, could never be created. The CRI therefore removes such exited
// attempts (their channels are unmounted and removed with them, as at `rm`) just before it
// creates the next one. An earlier attempt that still runs is left alone, and the create fails
// on its host path as before.
func (s *Service) channelHolders(sandboxID, name string, attempt uint32) []ContainerState {
	var out []ContainerState
	for _, c := range s.podContainers(sandboxID) {
		m, ok := metaOf(c)
		if !ok || m.Name != name || m.Attempt >= attempt || m.HostChannelBytes == 0 {
			continue
		}
		switch c.Status {
		case "running", "paused", "restarting", "removing":
			continue
		}
		out = append(out, c)
	}
	return out
}

// containerConfig checks a ContainerConfig and turns it into the engine's, in the pod sb.
func (s *Service) containerConfig(ctx context.Context, sb *sandbox, c *runtimeapi.ContainerConfig) (ContainerConfig, error) {
	md := c.GetMetadata()
	if md == nil || md.Name == "" {
		return ContainerConfig{}, invalidf("container config: metadata name is required")
	}
	ref := c.GetImage().GetImage()
	if ref == "" {
		return ContainerConfig{}, invalidf("container %q: no image given", md.Name)
	}
	img, err := s.images.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) {
		return ContainerConfig{}, errdefs.Errorf(errdefs.ErrNotFound, "container %q: image %q is not on this node (pull it first)", md.Name, ref)
	}
	if err != nil {
		return ContainerConfig{}, err
	}
	if u := c.GetImage().GetUserSpecifiedImage(); u != "" {
		if _, err := reference.Parse(u); err != nil {
			return ContainerConfig{}, invalidf("container %q: user_specified_image %q: not an image reference", md.Name, u)
		}
	}
	for k := range c.Labels {
		if k == labelMeta {
			return ContainerConfig{}, invalidf("container %q: label %q is reserved for the engine", md.Name, k)
		}
	}
	meta := containerMeta{SandboxID: sb.ID, Name: md.Name, Attempt: md.Attempt, Image: ref, ImageID: img.ID,
		UserImage:   c.GetImage().GetUserSpecifiedImage(),
		Annotations: c.Annotations}
	labels := map[string]string{}
	for k, v := range c.Labels {
		labels[k] = v
		meta.Labels = append(meta.Labels, k)
	}
	sort.Strings(meta.Labels)
	cc := ContainerConfig{
		Name:   engineName(md.Name, sb, md.Attempt),
		Labels: labels, Image: meta.shownImage(), ImageID: img.ID,
		Tty: c.Tty, Stdin: c.Stdin, Hostname: sb.Hostname,
		CgroupParent: sb.CgroupParent, Namespaces: map[string]string{},
	}
	if err := mergeImageConfig(&cc, c, img, ref); err != nil {
		return ContainerConfig{}, err
	}
	lx := c.GetLinux()
	sc := lx.GetSecurityContext()
	for _, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > 1<<32-2 {
			return ContainerConfig{}, invalidf("container %q: supplemental group %d: want a group ID", md.Name, g)
		}
		cc.SupplementalGroups = append(cc.SupplementalGroups, uint32(g))
	}
	cc.SupplementalGroupsStrict = sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict
	cc.Privileged = sc.GetPrivileged()
	cc.ReadonlyRootfs = sc.GetReadonlyRootfs()
	cc.NoNewPrivs = sc.GetNoNewPrivs()
	cc.CapAdd = sc.GetCapabilities().GetAddCapabilities()
	cc.CapDrop = sc.GetCapabilities().GetDropCapabilities()
	if !cc.Privileged {
		// A privileged container sees everything: the paths and the profile do not apply.
		cc.MaskedPaths, cc.ReadonlyPaths = sc.GetMaskedPaths(), sc.GetReadonlyPaths()
		if cc.Seccomp, err = seccompOf(sc.GetSeccomp()); err != nil {
			return ContainerConfig{}, fmt.Errorf("container %q: %w", md.Name, err)
		}
	}
	// Namespaces: the pod's pinned ones, or the host's.
	for kind, key := range map[nsKind]string{nsNet: "network", nsIPC: "ipc", nsUTS: "uts"} {
		if p, ok := sb.Namespaces[kind]; ok {
			cc.Namespaces[key] = p
		} else {
			cc.Namespaces[key] = HostNamespace
		}
	}
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		cc.Namespaces["pid"] = HostNamespace
	case runtimeapi.NamespaceMode_POD:
		// The pod's: the host's, the one its init holds, or (a pod that shares none) the
		// container's own.
		switch {
		case sb.HostPID:
			cc.Namespaces["pid"] = HostNamespace
		case sb.SharedPID:
			cc.Namespaces["pid"] = sb.Namespaces[nsPID]
		}
	case runtimeapi.NamespaceMode_CONTAINER:
		if sb.HostPID {
			cc.Namespaces["pid"] = HostNamespace
		}
	default:
		return ContainerConfig{}, errdefs.Errorf(errdefs.ErrNotImplemented, "container %q: PID namespace mode %v: not supported yet (want CONTAINER or NODE)", md.Name, sc.GetNamespaceOptions().GetPid())
	}
	if cc.Mounts, err = s.containerMounts(sb, c.Mounts); err != nil {
		return ContainerConfig{}, err
	}
	if cc.ImageMounts, meta.ImageMounts, err = s.imageMounts(ctx, c.Mounts); err != nil {
		return ContainerConfig{}, err
	}
	if c.LogPath != "" {
		if sb.LogDirectory == "" {
			return ContainerConfig{}, invalidf("container %q: log path %q given but the pod has no log directory", md.Name, c.LogPath)
		}
		p := filepath.Join(sb.LogDirectory, c.LogPath)
		if rel, err := filepath.Rel(sb.LogDirectory, p); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return ContainerConfig{}, invalidf("container %q: log path %q: want a file below the pod's log directory %q", md.Name, c.LogPath, sb.LogDirectory)
		}
		cc.LogPath = p
	}
	cc.Resources = resourcesOf(lx.GetResources())
	if err := s.applyAnnotations(&cc, sb, md, engineAnnotations(sb.Annotations, md.Name, c.Annotations)); err != nil {
		return ContainerConfig{}, err
	}
	if n := totalChannelBytes(cc.HostChannels); n > 0 {
		meta.HostChannelBytes = n
	}
	data, _ := json.Marshal(meta)
	cc.Labels[labelMeta] = string(data)
	return cc, nil
}

// containerMounts are the CRI's mounts, then the pod's files at the destinations the CRI
// leaves free.
func (s *Service) containerMounts(sb *sandbox, ms []*runtimeapi.Mount) ([]types.Mount, error) {
	var out []types.Mount
	taken := map[string]bool{}
	for _, m := range ms {
		if m.Image != nil && m.Image.Image != "" {
			continue // an image volume (imageMounts)
		}
		if !filepath.IsAbs(m.HostPath) || !filepath.IsAbs(m.ContainerPath) {
			return nil, invalidf("mount %q -> %q: want absolute host and container paths", m.HostPath, m.ContainerPath)
		}
		tm := types.Mount{Type: "bind", Source: m.HostPath, Target: filepath.Clean(m.ContainerPath), ReadOnly: m.Readonly,
			RecursiveReadOnly: m.RecursiveReadOnly}
		if m.RecursiveReadOnly {
			switch {
			case !m.Readonly:
				return nil, invalidf("mount %q -> %q: recursive_read_only needs readonly", m.HostPath, m.ContainerPath)
			case m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
				return nil, invalidf("mount %q -> %q: recursive_read_only needs private propagation (have %v)", m.HostPath, m.ContainerPath, m.Propagation)
			case !s.recursiveReadOnly(sb.RuntimeName):
				return nil, errdefs.Errorf(errdefs.ErrNotImplemented, "mount %q -> %q: recursive_read_only: runtime handler %q cannot make recursive read-only mounts", m.HostPath, m.ContainerPath, sb.RuntimeName)
			}
		}
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			tm.Propagation = "rprivate"
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			tm.Propagation = "rslave"
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			tm.Propagation = "rshared"
		}
		taken[tm.Target] = true
		out = append(out, tm)
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if t := "/etc/" + f; !taken[t] {
			out = append(out, types.Mount{Type: "bind", Source: filepath.Join(s.pods.filesDir(sb.ID), f), Target: t})
		}
	}
	return out, nil
}

// resourcesOf turns the CRI's Linux resources into the engine's.
func resourcesOf(r *runtimeapi.LinuxContainerResources) Resources {
	if r == nil {
		return Resources{}
	}
	out := Resources{CPUShares: r.CpuShares, CPUQuota: r.CpuQuota, CPUPeriod: r.CpuPeriod,
		CPUsetCPUs: r.CpusetCpus, CPUsetMems: r.CpusetMems, MemoryLimit: r.MemoryLimitInBytes,
		MemorySwap: r.MemorySwapLimitInBytes, OOMScoreAdj: r.OomScoreAdj}
	for _, h := range r.HugepageLimits {
		if out.HugepageLimits == nil {
			out.HugepageLimits = map[string]uint64{}
		}
		out.HugepageLimits[h.PageSize] = h.Limit
	}
	return out
}

// applyAnnotations reads this engine's own annotations: a system container, and host
// channels, which are allowed only under daemon.json cri-host-channel-roots.
func (s *Service) applyAnnotations(cc *ContainerConfig, sb *sandbox, md *runtimeapi.ContainerMetadata, ann map[string]annotation) error {
	if a, ok := ann[AnnotationSystemContainer]; ok {
		b, err := strconv.ParseBool(a.value)
		if err != nil {
			return invalidf("%s: %q: want true or false", a.given, a.value)
		}
		cc.SystemContainer = b
	}
	keys := make([]string, 0, len(ann))
	for k := range ann {
		if strings.HasPrefix(k, AnnotationHostChannelPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := ann[k]
		if strings.TrimPrefix(k, AnnotationHostChannelPrefix) == "" {
			return invalidf("%s: want %s<name>", a.given, AnnotationHostChannelPrefix)
		}
		if len(s.cfg.HostChannelRoots) == 0 {
			return errdefs.Errorf(errdefs.ErrPermissionDenied, "%s: host channels through the CRI are refused: no daemon.json \"cri-host-channel-roots\" is set", a.given)
		}
		ch, err := hostchannel.Parse(a.value)
		if err != nil {
			return fmt.Errorf("%s: %w", a.given, err)
		}
		if !underAny(ch.PathOnHost, s.cfg.HostChannelRoots) {
			return errdefs.Errorf(errdefs.ErrPermissionDenied, "%s: host path %q is not below any directory of daemon.json \"cri-host-channel-roots\" (%s)",
				a.given, ch.PathOnHost, strings.Join(s.cfg.HostChannelRoots, ", "))
		}
		cc.HostChannels = append(cc.HostChannels, ch)
	}
	if len(cc.HostChannels) > 0 {
		// The pod's channels together, this container's included, against half of the node's
		// memory (each container's own sum is checked again by the engine).
		total := totalChannelBytes(cc.HostChannels)
		released := map[string]bool{}
		for _, old := range s.channelHolders(sb.ID, md.GetName(), md.GetAttempt()) {
			released[old.ID] = true // CreateContainer removes them first
		}
		for _, c := range s.podContainers(sb.ID) {
			if m, ok := metaOf(c); ok && !released[c.ID] {
				total += m.HostChannelBytes
			}
		}
		if mem := s.engine.MemTotal(); mem > 0 && total > mem/2 {
			return invalidf("host channels of pod %s: %d bytes in all, more than half of the node's memory (%d bytes)", sb.fullName(), total, mem/2)
		}
	}
	return nil
}

func totalChannelBytes(chs []types.HostChannel) int64 {
	var n int64
	for _, ch := range chs {
		n += ch.Size
	}
	return n
}

// underAny tells whether p (clean, absolute) lies strictly below one of roots.
func underAny(p string, roots []string) bool {
	for _, r := range roots {
		r = filepath.Clean(r)
		if strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// engineName is the engine's name of a CRI container, as other runtimes name theirs; one too
// long for the engine keeps its start and a hash of the whole, so it stays unique.
func engineName(name string, sb *sandbox, attempt uint32) string {
	n := fmt.Sprintf("k8s_%s_%s_%s_%s_%d", name, sb.Name, sb.Namespace, sb.UID, attempt)
	if len(n) <= maxEngineName {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:maxEngineName-17] + "_" + hex.EncodeToString(sum[:8])
}

// maxEngineName is the engine's longest container name (opts.MaxNameLen).
const maxEngineName = 255

// seccompOf is the engine's seccomp setting for a CRI profile: none given means unconfined,
// as the CRI says.
func seccompOf(p *runtimeapi.SecurityProfile) (string, error) {
	switch p.GetProfileType() {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if p == nil {
			return "unconfined", nil
		}
		return "", nil
	case runtimeapi.SecurityProfile_Unconfined:
		return "unconfined", nil
	case runtimeapi.SecurityProfile_Localhost:
		if !filepath.IsAbs(p.LocalhostRef) {
			return "", invalidf("seccomp profile %q: want the absolute path of a profile on the node", p.LocalhostRef)
		}
		return p.LocalhostRef, nil
	}
	return "", invalidf("seccomp profile type %v: unknown", p.GetProfileType())
}

// annotation is one of this engine's annotations and the key it was given under (a pod's
// scoped key, or the container's own), which errors name.
type annotation struct{ value, given string }

// engineAnnotations are the container's own annotations plus the pod's that are scoped to it
// (AnnotationContainerPrefix), with the scope taken off.
func engineAnnotations(pod map[string]string, name string, own map[string]string) map[string]annotation {
	scope := AnnotationContainerPrefix + name + "."
	out := map[string]annotation{}
	for k, v := range pod {
		if rest, ok := strings.CutPrefix(k, scope); ok {
			out["io.isulad."+rest] = annotation{v, "pod annotation " + strconv.Quote(k)}
		}
	}
	for k, v := range own {
		out[k] = annotation{v, "annotation " + strconv.Quote(k)}
	}
	return out
}

// metaImageMount is an image volume as the CRI reports it back.
type metaImageMount struct {
	Target    string `json:"target"`
	Image     string `json:"image"` // as asked
	UserImage string `json:"userImage,omitempty"`
	ImageID   string `json:"imageId"`
	SubPath   string `json:"subPath,omitempty"`
}

// imageMounts are the CRI's image volumes (Mount.image): images of the store mounted
// read-only, whole or one directory (image_sub_path). A writable one is refused, as the CRI
// says; the image must be on the node (the kubelet pulls it first).
func (s *Service) imageMounts(ctx context.Context, ms []*runtimeapi.Mount) ([]ImageMount, []metaImageMount, error) {
	var out []ImageMount
	var meta []metaImageMount
	for _, m := range ms {
		if m.Image == nil || m.Image.Image == "" {
			continue
		}
		ref := m.Image.Image
		if !filepath.IsAbs(m.ContainerPath) || filepath.Clean(m.ContainerPath) == "/" {
			return nil, nil, invalidf("image volume %q at %q: want an absolute container path other than /", ref, m.ContainerPath)
		}
		if !m.Readonly {
			return nil, nil, invalidf("image volume %q at %q: must be read-only (readonly: true)", ref, m.ContainerPath)
		}
		if m.HostPath != "" {
			return nil, nil, invalidf("image volume %q at %q: has a host path %q too", ref, m.ContainerPath, m.HostPath)
		}
		if sp := m.ImageSubPath; sp != "" && !validSubPath(sp) {
			return nil, nil, invalidf("image volume %q at %q: image_sub_path %q: want a relative path inside the image, without . or ..", ref, m.ContainerPath, sp)
		}
		if u := m.Image.UserSpecifiedImage; u != "" {
			if _, err := reference.Parse(u); err != nil {
				return nil, nil, invalidf("image volume at %q: user_specified_image %q: not an image reference", m.ContainerPath, u)
			}
		}
		img, err := s.images.Resolve(ctx, ref)
		if errdefs.IsNotFound(err) {
			return nil, nil, errdefs.Errorf(errdefs.ErrNotFound, "image volume at %q: image %q is not on this node (pull it first)", m.ContainerPath, ref)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("image volume at %q: %w", m.ContainerPath, err)
		}
		target := filepath.Clean(m.ContainerPath)
		out = append(out, ImageMount{ImageID: img.ID, Target: target, SubPath: m.ImageSubPath})
		meta = append(meta, metaImageMount{Target: target, Image: ref, UserImage: m.Image.UserSpecifiedImage, ImageID: img.ID, SubPath: m.ImageSubPath})
	}
	return out, meta, nil
}

// validSubPath: relative, clean, no "." or ".." component, no NUL.
func validSubPath(p string) bool {
	if p == "" || len(p) > 4096 || filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." {
			return false
		}
	}
	return true
}
