package apitype

// DefaultSocketPath is where netextd serves the control API.
const DefaultSocketPath = "/run/netext/netextd.sock"

// SocketEnv is the environment variable that overrides the socket path for
// clients.
const SocketEnv = "NETEXT_SOCKET"

// DefaultGroup is the group whose members may change configurations and
// sessions, besides root.
const DefaultGroup = "netext"
