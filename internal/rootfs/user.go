package rootfs

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/internal/errdefs"
)

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// LookupUser resolves -u (uid, uid:gid, name or name:group) against the rootfs's
// /etc/passwd and /etc/group, adding the user's supplementary groups as docker does. Both
// files are read as ReadFile does (regular files of at most 32 MiB, resolved inside the
// rootfs); a missing one is empty.
func LookupUser(rootfs, user string) (specs.User, error) {
	if user == "" {
		return specs.User{}, nil
	}
	uStr, gStr, hasGroup := strings.Cut(user, ":")
	if uStr == "" || (hasGroup && gStr == "") {
		return specs.User{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "--user %q: want user, uid, user:group or uid:gid", user)
	}
	passwd, err := readPasswd(rootfs)
	if err != nil {
		return specs.User{}, userError(user, err)
	}
	var u specs.User
	name := ""
	if id, err := strconv.ParseUint(uStr, 10, 32); err == nil {
		u.UID = uint32(id)
		for _, p := range passwd {
			if p.uid == u.UID {
				u.GID, name = p.gid, p.name
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == uStr {
				u.UID, u.GID, name, found = p.uid, p.gid, p.name, true
				break
			}
		}
		if !found {
			return specs.User{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "--user %q: no user %q in the container's /etc/passwd", user, uStr)
		}
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return specs.User{}, userError(user, err)
	}
	if hasGroup {
		if id, err := strconv.ParseUint(gStr, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			found := false
			for _, g := range groups {
				if g.name == gStr {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return specs.User{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "--user %q: no group %q in the container's /etc/group", user, gStr)
			}
		}
	}
	if name != "" && !hasGroup {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
				}
			}
		}
	}
	return u, nil
}

// userError names the flag in an error reading the rootfs' user database; one without a
// category is the rootfs' fault, not the request's.
func userError(user string, err error) error {
	kind := errdefs.Kind(err)
	if kind == errdefs.ErrUnknown {
		kind = errdefs.ErrFailedPrecondition
	}
	return errdefs.Errorf(kind, "--user %q: %w", user, err)
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readColonFile(rootfs, "/etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)})
		}
	})
	return out, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	var out []groupEntry
	err := readColonFile(rootfs, "/etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	})
	return out, err
}

// readColonFile reads a passwd-like file of the rootfs; a missing file is empty.
func readColonFile(rootfs, name string, each func([]string)) error {
	if rootfs == "" {
		return nil
	}
	data, err := ReadFile(rootfs, name, maxUserDB)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		each(strings.Split(line, ":"))
	}
	return sc.Err()
}
