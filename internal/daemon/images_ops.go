package daemon

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/image/reference"
	"github.com/isulad-go/isulad/internal/image/store"
)

// isDangling: an image with neither a name nor a repo@digest (an image pulled by digest
// is listed, as docker lists it).
func isDangling(im store.Image) bool { return len(im.Names) == 0 && len(im.Digests) == 0 }

// familiar lists names in docker's short form.
func familiar(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, reference.Familiar(n))
	}
	return out
}

// containersOf lists the containers made from an image.
func (d *Daemon) containersOf(id string) []*container.Container {
	var out []*container.Container
	for _, c := range d.store.List() {
		if c.Image == id || slices.ContainsFunc(c.ImageMounts, func(m container.ImageMount) bool { return m.Image == id }) {
			out = append(out, c)
		}
	}
	return out
}

// InspectImage is docker's image inspect.
func (d *Daemon) InspectImage(name string) (types.ImageInspect, error) {
	im, err := d.images.store.Lookup(name)
	if err != nil {
		return types.ImageInspect{}, err
	}
	cfg, err := d.images.store.Config(im)
	if err != nil {
		return types.ImageInspect{}, err
	}
	out := types.ImageInspect{
		ID: im.ID, RepoTags: familiar(im.Names), RepoDigests: familiar(im.Digests), Created: cfg.Created.Time.UTC(),
		Author: cfg.Author, Config: imageConfig(cfg), Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS,
		Size: im.Size, RootFS: types.RootFS{Type: "layers"}, ManifestType: im.ManifestMediaType,
		Metadata: types.ImageMetadata{LastTagTime: im.Loaded},
	}
	var dirs []string
	for _, l := range cfg.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, l.String())
		dirs = append([]string{d.images.store.LayerDir(l.String())}, dirs...)
	}
	out.GraphDriver = types.GraphDriver{Name: "overlay", Data: map[string]string{"LowerDir": strings.Join(dirs, ":")}}
	if len(cfg.History) > 0 {
		out.Comment = cfg.History[len(cfg.History)-1].Comment
	}
	return out, nil
}

// ListImages is `images`: named images (with -a, also untagged ones), filtered.
func (d *Daemon) ListImages(req types.ImageListRequest) ([]types.ImageSummary, error) {
	all := d.images.store.List()
	f, err := parseImageFilters(req.Filters, d.images.store)
	if err != nil {
		return nil, err
	}
	used := map[string]int{}
	for _, c := range d.store.List() {
		used[c.Image]++
	}
	out := []types.ImageSummary{}
	for _, im := range all {
		if isDangling(im) && !req.All && f.dangling == nil {
			continue
		}
		cfg, err := d.images.store.Config(im)
		if err != nil {
			continue
		}
		if !f.match(im, cfg.Config.Labels, cfg.Created.Time) {
			continue
		}
		names := f.names(im.Names)
		if len(f.refs) > 0 && len(names) == 0 {
			continue
		}
		out = append(out, types.ImageSummary{ID: im.ID, RepoTags: familiar(names), RepoDigests: familiar(im.Digests),
			Created: cfg.Created.Time.UTC(), Size: im.Size, Labels: cfg.Config.Labels, Containers: used[im.ID]})
	}
	return out, nil
}

type imageFilters struct {
	refs          []string
	dangling      *bool
	before, since *time.Time
	labels        []string
}

func parseImageFilters(fs []string, st *store.Store) (*imageFilters, error) {
	f := &imageFilters{}
	for _, kv := range fs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "filter %q: want KEY=VALUE (reference, dangling, before, since, label)", kv)
		}
		switch k {
		case "reference":
			if _, err := path.Match(v, ""); err != nil {
				return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "filter reference=%q: bad pattern", v)
			}
			f.refs = append(f.refs, v)
		case "dangling":
			b := v == "true" || v == "1"
			if !b && v != "false" && v != "0" {
				return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "filter dangling=%q: want true or false", v)
			}
			f.dangling = &b
		case "before", "since":
			im, err := st.Lookup(v)
			if err != nil {
				return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "filter %s=%q: no such image", k, v)
			}
			cfg, err := st.Config(im)
			if err != nil {
				return nil, err
			}
			t := cfg.Created.Time
			if k == "before" {
				f.before = &t
			} else {
				f.since = &t
			}
		case "label":
			f.labels = append(f.labels, v)
		default:
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "filter %q: unknown key %q (want reference, dangling, before, since, label)", kv, k)
		}
	}
	return f, nil
}

func (f *imageFilters) match(im store.Image, labels map[string]string, created time.Time) bool {
	if f.dangling != nil && *f.dangling != isDangling(im) {
		return false
	}
	if f.before != nil && !created.Before(*f.before) {
		return false
	}
	if f.since != nil && !created.After(*f.since) {
		return false
	}
	for _, l := range f.labels {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// names keeps the names that match the reference= filters (all without one): docker
// filters the rows, one per name.
func (f *imageFilters) names(names []string) []string {
	if len(f.refs) == 0 {
		return names
	}
	var out []string
	for _, n := range names {
		fam := reference.Familiar(n)
		repo := reference.FamiliarRepo(n)
		for _, p := range f.refs {
			if ok, _ := path.Match(p, fam); ok {
				out = append(out, n)
				break
			}
			if ok, _ := path.Match(p, repo); ok {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// TagImage gives an image another name.
func (d *Daemon) TagImage(src, dst string) error {
	return d.images.store.Tag(src, dst)
}

// RemoveImages is rmi: each name is untagged; an image without names left (or named by
// ID) is deleted unless a container uses it. Force untags every name and deletes the
// record even then (the containers keep their layers until they are removed).
func (d *Daemon) RemoveImages(names []string, force bool) (types.ImageDeleteResponse, error) {
	d.images.use.Lock()
	defer d.images.use.Unlock()
	var resp types.ImageDeleteResponse
	for _, n := range names {
		items, err := d.removeImage(n, force)
		resp.Items = append(resp.Items, items...)
		if err != nil {
			// Per name, as docker: the others still go; the client prints it and fails.
			resp.Items = append(resp.Items, types.ImageDeleteItem{Error: err.Error()})
		}
	}
	freed, err := d.gcImages()
	resp.Reclaimed = freed
	if err != nil {
		d.log.Warn("reclaiming image space", "err", err)
	}
	return resp, nil
}

func (d *Daemon) removeImage(name string, force bool) ([]types.ImageDeleteItem, error) {
	im, err := d.images.store.Lookup(name)
	if err != nil {
		return nil, err
	}
	byName := false
	var tagged string
	if r, err := reference.Parse(name); err == nil && !(reference.IsID(name) && strings.HasPrefix(im.ID[7:], strings.TrimPrefix(name, "sha256:"))) {
		if t := r.TagString(); r.Digest == "" && slices.Contains(im.Names, t) {
			byName, tagged = true, t
		}
	}
	users := d.containersOf(im.ID)
	var items []types.ImageDeleteItem
	if byName && len(im.Names) > 1 {
		// One of several names: only that name goes.
		if _, err := d.images.store.Untag(tagged); err != nil {
			return nil, err
		}
		return []types.ImageDeleteItem{{Untagged: reference.Familiar(tagged)}}, nil
	}
	if len(users) > 0 && !force {
		return nil, errdefs.Errorf(errdefs.ErrConflict, "image %s is used by container %s (remove the container first, or use -f)", name, users[0].Name)
	}
	if !byName && len(im.Names) > 1 && !force {
		return nil, errdefs.Errorf(errdefs.ErrConflict, "image %s has several names (%s): remove them one by one, or use -f", name, strings.Join(familiar(im.Names), ", "))
	}
	for _, n := range im.Names {
		items = append(items, types.ImageDeleteItem{Untagged: reference.Familiar(n)})
	}
	if err := d.images.store.Delete(im.ID); err != nil {
		return items, err
	}
	if err := fault.Point(store.FaultRemoveAfterUntag); err != nil {
		return items, err
	}
	items = append(items, types.ImageDeleteItem{Deleted: im.ID})
	d.log.Info("image removed", "id", im.ID)
	return items, nil
}

// PruneImages removes dangling images (all: every image) that no container uses.
func (d *Daemon) PruneImages(all bool) (types.ImageDeleteResponse, error) {
	d.images.use.Lock()
	defer d.images.use.Unlock()
	var resp types.ImageDeleteResponse
	for _, im := range d.images.store.List() {
		if (!isDangling(im) && !all) || len(d.containersOf(im.ID)) > 0 {
			continue
		}
		if err := d.images.store.Delete(im.ID); err != nil {
			return resp, err
		}
		for _, n := range im.Names {
			resp.Items = append(resp.Items, types.ImageDeleteItem{Untagged: reference.Familiar(n)})
		}
		resp.Items = append(resp.Items, types.ImageDeleteItem{Deleted: im.ID})
	}
	freed, err := d.gcImages()
	resp.Reclaimed = freed
	return resp, err
}

// DiskUsage is `system df`.
func (d *Daemon) DiskUsage() types.DiskUsage {
	var u types.DiskUsage
	ims := d.images.store.List()
	u.Images = len(ims)
	count := map[string]int{}
	for _, im := range ims {
		if len(d.containersOf(im.ID)) > 0 {
			u.ImagesActive++
		}
		for _, l := range im.Layers {
			count[l.DiffID]++
		}
	}
	for id, n := range count {
		if n > 1 {
			u.ImagesShared += d.images.store.LayerSize(id)
		}
	}
	u.LayersSize, u.BlobsSize = d.images.store.Usage()
	for _, c := range d.store.List() {
		u.Containers++
		_, upper, _ := d.rootfsDirs(c.ID)
		u.ContainersSize += store.DiskUsage(upper)
		u.Channels += len(c.HostConfig.HostChannels)
	}
	u.ChannelsSize = store.DiskUsage(path.Join(d.cfg.Graph, "hostchannels"))
	return u
}

// Login checks a login with the registry, then keeps it.
func (d *Daemon) Login(ctx context.Context, req types.LoginRequest) error {
	server := req.Server
	if server == "" {
		server = "docker.io"
	}
	if req.Username == "" || req.Password == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "login to %s: want a user name and a password", server)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	check := host
	if host == "docker.io" {
		check = "index.docker.io"
	}
	if err := d.images.reg.CheckLogin(ctx, check, req.Username, req.Password); err != nil {
		return err
	}
	if err := d.images.creds.Set(host, req.Username, req.Password); err != nil {
		return fmt.Errorf("storing the login for %s: %w", host, err)
	}
	d.log.Info("logged in to a registry", "registry", host, "user", req.Username)
	return nil
}

// Logout forgets a login.
func (d *Daemon) Logout(server string) error {
	if server == "" {
		server = "docker.io"
	}
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	ok, err := d.images.creds.Delete(host)
	if err != nil {
		return err
	}
	if !ok {
		return errdefs.Errorf(errdefs.ErrNotFound, "not logged in to %s", host)
	}
	return nil
}
