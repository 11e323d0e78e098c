package localapi

import (
	"context"
	"fmt"
	"net"
	"os/user"
	"slices"
	"strconv"
)

// Identity is the process at the other end of a connection, from the
// kernel (SO_PEERCRED), read once when the connection is accepted.
type Identity struct {
	UID, GID uint32
	PID      int32
}

// String returns "uid 1000 gid 1000 pid 42".
func (id Identity) String() string {
	return fmt.Sprintf("uid %d gid %d pid %d", id.UID, id.GID, id.PID)
}

type callerKey struct{}

// caller is what the server knows about a connection's peer.
type caller struct {
	id    Identity
	known bool  // id was read
	err   error // why it was not
	write bool  // may change things
}

// IdentityFrom returns the identity of the caller of the request whose
// context ctx is, and false when the caller could not be identified.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	c, ok := ctx.Value(callerKey{}).(*caller)
	if !ok || !c.known {
		return Identity{}, false
	}
	return c.id, true
}

func callerFrom(ctx context.Context) *caller {
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		return c
	}
	return &caller{err: fmt.Errorf("no connection identity")}
}

// connContext identifies the peer of c once and decides what it may do.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	cl := &caller{}
	id, err := s.identify(c)
	if err != nil {
		cl.err = err
		s.log.Warn("cannot identify caller: it may only read", "err", err)
	} else {
		cl.id, cl.known = id, true
		cl.write = s.mayWrite(id)
	}
	return context.WithValue(ctx, callerKey{}, cl)
}

// mayWrite reports whether id may change configurations and sessions: root,
// and members of the write group (as primary group of the process or in
// the group database).
func (s *Server) mayWrite(id Identity) bool {
	if id.UID == 0 {
		return true
	}
	if !s.groupOK {
		return false
	}
	if id.GID == s.gid {
		return true
	}
	gids, err := s.userGroups(id.UID)
	if err != nil {
		s.log.Warn("looking up groups of caller", "uid", id.UID, "err", err)
		return false
	}
	return slices.Contains(gids, s.gid)
}

// lookupUserGroups returns the groups of uid in the group database.
func lookupUserGroups(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	var gids []uint32
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			gids = append(gids, uint32(g))
		}
	}
	return gids, nil
}
